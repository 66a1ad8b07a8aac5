// SCRAM end to end with a real Prosody (every generation installed) and a real client (Debian's
// python3-slixmpp): with external_auth_scram the shim fetches each user's salted credentials
// through the component (`scram` query, the script's `scram:USER:SERVER:HASH` line) and Prosody
// runs the SCRAM exchange itself, so the password never leaves the client. Checked from the
// script's own record of every line it received.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { type ComponentProcess, REPO_ROOT } from '../support/component.js';
import { type ProsodyInstall, ProsodyServer, prosodyTestTargets, startComponentFor } from '../support/prosody.js';
import { type SaslLoginReport, slixmppLogin, slixmppPython, slixmppSkipReason } from '../support/slixmpp.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';

const targets = prosodyTestTargets();
const missing = targets.missing ?? slixmppSkipReason();
/** Knows its users' passwords, derives their SCRAM credentials, and records every line it gets. */
const SCRIPT = join(REPO_ROOT, 'test/fixtures/scripts/scram-users.py');
const USERS: Record<string, string> = { alice: 'correct horse battery', bob: 'hunter2:with:colons' };

if (missing) describe(`Prosody with SCRAM: ${missing}`, { skip: missing }, () => {});
else
  for (const install of targets.installs) {
    withoutTls(install);
    withTls(install);
    misconfigured(install);
  }

/** Prosody, one component on the users-file script (recording every line), and the SCRAM options. */
function scramSetup(install: ProsodyInstall, options: { tls: boolean; label: string }) {
  const state = {} as { prosody: ProsodyServer; component: ComponentProcess | undefined; record: string; usersFile: string; certs?: TestCertificates };
  const everyComponent: ComponentProcess[] = [];
  const start = async () => {
    state.component = await startComponentFor(state.prosody, {
      domain: Object.keys(state.prosody.components)[0]!,
      command: `${slixmppPython()} ${SCRIPT} ${state.usersFile}`,
      env: { E2E_LINE_LOG: state.record },
    });
    everyComponent.push(state.component);
  };
  before(async () => {
    if (options.tls) state.certs = makeTestCertificates({ dns: ['localhost'], ip: ['127.0.0.1'] });
    state.prosody = await ProsodyServer.start({
      install,
      scram: ['sha-256', 'sha-1'],
      allowUnencryptedPlain: false,
      authTimeout: 5,
      label: options.label,
      ...(state.certs ? { tls: { certFile: state.certs.certFile, keyFile: state.certs.keyFile } } : {}),
    });
    state.usersFile = join(state.prosody.dir, 'users.json');
    state.record = join(state.prosody.dir, 'script-record.txt');
    writeFileSync(state.usersFile, JSON.stringify(USERS));
    writeFileSync(state.record, '');
  });
  after(async () => {
    await state.component?.stop();
    state.certs?.remove();
    if (!state.prosody) return;
    // The keys are secrets like passwords: in no log, Prosody's (at debug level) or the components'.
    const logs = [state.prosody.logText(), ...everyComponent.map((c) => `${c.logText()}\n${c.stderr}`)].join('\n');
    const secrets = [...Object.values(USERS), ...scramKeys(state.usersFile)];
    await state.prosody.stop();
    for (const secret of secrets) assert.ok(!logs.includes(secret), 'a password or SCRAM key appears in a log');
  });
  const login = (username: string, password: string, mechanism: string, extra: { tls12?: boolean } = {}) =>
    slixmppLogin({
      host: state.prosody.host,
      port: state.prosody.c2sPort,
      jid: `${username}@${state.prosody.vhost}`,
      password,
      mechanism,
      ...(state.certs ? { starttls: state.certs.caFile } : {}),
      ...extra,
    });
  const received = () => readFileSync(state.record, 'utf8').split('\n').filter(Boolean);
  return { state, start, login, received };
}

/** The stored and server keys the script answers for every user and hash, asked of the script itself. */
function scramKeys(usersFile: string): string[] {
  const lines = Object.keys(USERS).flatMap((user) => ['sha-256', 'sha-1'].map((hash) => `scram:${user}:localhost:${hash}\n`));
  const answers = execFileSync(slixmppPython()!, [SCRIPT, usersFile], { input: lines.join(''), encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return answers
    .split('\n')
    .filter((line) => line.startsWith('1:'))
    .flatMap((line) => line.split(':').slice(3));
}

function withoutTls(install: ProsodyInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: SCRAM without TLS (PLAIN not offered)`, { timeout: 90_000 }, () => {
    const { state, start, login, received } = scramSetup(install, { tls: false, label: 'prosody scram' });
    before(start);

    test('SCRAM-SHA-256 logs in, PLAIN is not offered, and the script never receives the password', async () => {
      const result = await login('alice', USERS.alice!, 'SCRAM-SHA-256');
      assert.deepEqual(pick(result), { result: 'ok', condition: null });
      assert.deepEqual(result.offered, ['SCRAM-SHA-1', 'SCRAM-SHA-256']);
      assert.deepEqual(received(), ['scram:alice:localhost:sha-256']);
      assert.ok(!readFileSync(state.record, 'utf8').includes(USERS.alice!));
    });

    test('SCRAM-SHA-1 logs in when listed', async () => {
      const result = await login('bob', USERS.bob!, 'SCRAM-SHA-1');
      assert.equal(result.result, 'ok', JSON.stringify(result));
      assert.ok(received().includes('scram:bob:localhost:sha-1'));
    });

    test('a wrong password and an unknown user are refused with not-authorized', async () => {
      assert.deepEqual(pick(await login('alice', 'wrong horse', 'SCRAM-SHA-256')), { result: 'refused', condition: 'not-authorized' });
      assert.deepEqual(pick(await login('mallory', 'anything', 'SCRAM-SHA-256')), { result: 'refused', condition: 'not-authorized' });
      assert.ok(received().includes('scram:mallory:localhost:sha-256'), 'the unknown user was asked for');
      const record = readFileSync(state.record, 'utf8');
      for (const password of ['wrong horse', 'anything']) assert.ok(!record.includes(password), 'a password reached the script');
    });

    test("the script's backend fails: temporary-auth-failure, never not-authorized", async () => {
      // The fixture answers anything about "outage" with a line that is no answer.
      assert.deepEqual(pick(await login('outage', 'anything', 'SCRAM-SHA-256')), { result: 'refused', condition: 'temporary-auth-failure' });
    });

    test('no component connected: temporary-auth-failure; back again: SCRAM logs in', async () => {
      await state.component!.stop();
      state.component = undefined;
      assert.deepEqual(pick(await login('alice', USERS.alice!, 'SCRAM-SHA-256')), { result: 'refused', condition: 'temporary-auth-failure' });
      await start();
      assert.deepEqual(pick(await login('alice', USERS.alice!, 'SCRAM-SHA-256')), { result: 'ok', condition: null });
    });
  });
}

function withTls(install: ProsodyInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: SCRAM over STARTTLS`, { timeout: 90_000 }, () => {
    const { start, login, received } = scramSetup(install, { tls: true, label: 'prosody scram tls' });
    before(start);

    test('over TLS 1.2 the -PLUS forms are offered, and SCRAM-SHA-256-PLUS logs in (tls-unique)', async () => {
      const result = await login('alice', USERS.alice!, 'SCRAM-SHA-256-PLUS', { tls12: true });
      assert.deepEqual(pick(result), { result: 'ok', condition: null });
      assert.deepEqual(result.offered, ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']);
      assert.ok(!received().some((line) => line.includes(USERS.alice!)));
    });

    // TLS 1.3 has no tls-unique. Prosody 13 binds with tls-exporter instead; 0.12 cannot bind.
    // (slixmpp 1.8 binds with tls-unique only, so it cannot log in with -PLUS over TLS 1.3.)
    const plusOverTls13 = !install.version.startsWith('0.12.');

    test(`PLAIN, offered over TLS, still logs in through the script; over TLS 1.3 -PLUS is ${plusOverTls13 ? '' : 'not '}offered`, async () => {
      const before = received().length;
      const result = await login('bob', USERS.bob!, 'PLAIN');
      const plus = plusOverTls13 ? ['SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS'] : [];
      assert.deepEqual(pick(result), { result: 'ok', condition: null });
      assert.deepEqual(result.offered, ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256', ...plus].sort());
      assert.deepEqual(
        received()
          .slice(before)
          .map((line) => line.split(':').slice(0, 3).join(':')),
        ['auth:bob:localhost'],
      );
    });
  });
}

function misconfigured(install: ProsodyInstall): void {
  nodeTest(`external_auth_scram with a hash Prosody does not offer: the module does not load, and the log says which option (${install.label})`, async () => {
    const prosody = await ProsodyServer.start({ install, scram: ['sha-512'], label: 'prosody scram misconfigured' });
    try {
      // Prosody loads a host's modules before it listens, so the log has the answer by now.
      assert.match(prosody.logText(), /external_auth_scram: "sha-512" is not a SCRAM hash this Prosody offers/);
    } finally {
      await prosody.stop();
    }
  });
}

function pick(report: SaslLoginReport) {
  return { result: report.result, condition: report.condition };
}
