// Fault scenarios that must hold the same way over pipes and under a pty.
import assert from 'node:assert/strict';
import { errorOf, resultOf, startHarness } from './harness.js';

/**
 * A script that misses its deadline is killed; its late "1" must never answer the next
 * request (a wrong password right behind it would be accepted). Returns the timeout warning.
 */
export async function lateAnswerNeverAnswersTheNext(env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const h = await startHarness({ env: { ...env, EXTERNAL_AUTH_TIMEOUT: '0.5' } });
  try {
    const late = await h.ask({ user: 'slow1500', password: 'good' });
    assert.deepEqual([errorOf(late).type, errorOf(late).condition], ['wait', 'remote-server-timeout']);
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'wrong' })), 'false');
    // Once the silent process is killed and another one is up, its late "1" can never come.
    const warning = await h.waitForLog((l) => l.event === 'script.hung');
    await h.waitForLog((l) => l.event === 'script.started' && l.scriptPid !== warning.scriptPid);
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'wrong' })), 'false');
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
    return warning;
  } finally {
    await h.cleanup();
  }
}

/**
 * A crash is answered internal-server-error at once, not at the timeout, and the script comes
 * back. The timeout is far longer than the harness waits for a reply: an answer that waited for
 * it would never be seen.
 */
export async function crashIsAnsweredAtOnce(env: Record<string, string> = {}): Promise<void> {
  const h = await startHarness({ env: { ...env, EXTERNAL_AUTH_TIMEOUT: '300' } });
  try {
    const reply = await h.ask({ user: 'crash', password: 'good' });
    assert.deepEqual([errorOf(reply).type, errorOf(reply).condition], ['wait', 'internal-server-error']);
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
    const exits = h.logs().filter((l) => l.event === 'script.exited');
    assert.equal(exits.length, 1);
    assert.equal(exits[0]!.code, 3);
  } finally {
    await h.cleanup();
  }
}
