import { isUtf8 } from 'node:buffer';
import type { ScramHash } from '../core/auth-request.js';
import { FramingError, type ScriptAnswer } from '../codec/codec.js';
import { MAX_SCRAM_ITERATIONS, parseScramCredentials } from '../codec/scram-answer.js';
import { codecFor } from '../codec/index.js';
import type { ScriptProtocol } from '../config/config.js';
import { SecretMemory } from '../worker/stderr-relay.js';
import type { ScriptObservation } from './script-probe.js';

export const EXIT_YES = 0;
export const EXIT_NO = 1;
export const EXIT_MISBEHAVED = 3;

/** The id check-script gives its one tagged request. */
export const TAGGED_ID = 'c1';
const HEX_DUMP_BYTES = 48;
const STDERR_LINES = 8;

export interface ProbeSetup {
  readonly protocol: ScriptProtocol;
  readonly pty: boolean;
  readonly timeoutMs: number;
  /** The request's fields, as the script should have received them (password included). */
  readonly fields: string;
  /** Replaced by `*` wherever it shows up in what is printed. */
  readonly password?: string;
  /** A `scram` request for this hash: the answer is `0` or credentials, whose keys are never printed. */
  readonly scramHash?: ScramHash;
}

export interface Verdict {
  readonly exitCode: number;
  /** For people: what happened, and for a problem, its likely cause and what to change. */
  readonly lines: readonly string[];
}

/** The request as the protocol frames it. */
export function encodeRequest(protocol: ScriptProtocol, fields: string): Buffer {
  return codecFor(protocol).encode(fields, protocol === 'tagged' ? TAGGED_ID : undefined);
}

/** Where the first complete answer ends in the output (ejabberd: also where a frame goes wrong). */
export function answerEnd(protocol: ScriptProtocol, output: Buffer): number | null {
  if (protocol !== 'ejabberd') {
    const newline = output.indexOf(0x0a);
    return newline === -1 ? null : newline + 1;
  }
  try {
    let end: number | null = null;
    codecFor('ejabberd')
      .createDecoder()
      .push(output.subarray(0, 4), () => (end = 4));
    return end;
  } catch (error) {
    if (error instanceof FramingError) return Math.min(output.length, 4);
    throw error;
  }
}

type Answer = { kind: 'yes' } | { kind: 'no' } | { kind: 'backend-error' } | { kind: 'credentials'; text: string } | { kind: 'invalid'; why: string };

/** Reads one answer (the bytes `answerEnd` delimited) as the component would. */
function readAnswer(protocol: ScriptProtocol, bytes: Buffer): Answer {
  let answer: ScriptAnswer | undefined;
  let id: string | undefined;
  try {
    codecFor(protocol)
      .createDecoder()
      .push(bytes, (value, tag) => {
        if (answer !== undefined) return;
        answer = value;
        id = tag;
      });
  } catch (error) {
    if (error instanceof FramingError) return { kind: 'invalid', why: error.message };
    throw error;
  }
  if (protocol === 'tagged' && answer !== undefined && id !== TAGGED_ID) {
    return { kind: 'invalid', why: `it answered id ${id}, which it was never sent (the request's id was ${TAGGED_ID})` };
  }
  if (answer === true) return { kind: 'yes' };
  if (answer === false) return { kind: 'no' };
  if (answer === 'backend-error') return { kind: 'backend-error' };
  if (typeof answer === 'object') return { kind: 'credentials', text: answer.credentials };
  const shapes = {
    generic: 'a line holding 1 or 0',
    ejabberd: 'exactly 00 02 00 00 or 00 02 00 01',
    tagged: `${TAGGED_ID}:1, ${TAGGED_ID}:0 or ${TAGGED_ID}:E`,
  };
  return { kind: 'invalid', why: `the answer must be ${shapes[protocol]}` };
}

/** What the output looks like when it is not what the configured protocol expects. */
function otherProtocol(protocol: ScriptProtocol, output: Buffer): ScriptProtocol | null {
  const text = output.toString('latin1');
  if (protocol !== 'ejabberd' && output.length >= 4 && output[0] === 0 && output[1] === 2 && output[2] === 0 && (output[3] === 0 || output[3] === 1))
    return 'ejabberd';
  if (protocol !== 'generic' && /^[01][\r ]*\n/.test(text)) return 'generic';
  if (protocol !== 'tagged' && /^[0-9a-z]{1,16}:[01E][\r ]*\n/.test(text)) return 'tagged';
  return null;
}

export function diagnose(setup: ProbeSetup, seen: ScriptObservation): Verdict {
  const { protocol } = setup;
  const redact = (bytes: Buffer) => (setup.scramHash === undefined ? redactBytes(bytes, setup.password) : maskKeys(bytes));
  const lines: string[] = [];
  const problems: string[] = [];
  const transport = setup.pty ? 'a pseudo-terminal (EXTERNAL_AUTH_PTY=true)' : 'pipes';
  const problem = (what: string, ...hints: string[]) => {
    problems.push(what, ...hints.map((hint) => (hint.startsWith(' ') ? hint : `  - ${hint}`)));
  };

  if (seen.notReady !== undefined) {
    problem(`the script's terminal could not be prepared: ${seen.notReady}`, 'run it on pipes instead: EXTERNAL_AUTH_PTY=false (flush after each answer)');
    return finish();
  }

  if (seen.beforeRequest.length > 0) {
    problem(
      `the script wrote ${seen.beforeRequest.length} bytes before it was sent anything (a banner or a prompt):`,
      ...dump(redact(seen.beforeRequest)),
      'the component would read them as an answer, or restart the script for output nobody asked for: print nothing on stdout before the first request (use stderr for messages)',
    );
  }
  if (!seen.requestSent) {
    problem(`the script exited before it was sent anything (${seen.exit ? describeExit(seen.exit) : 'no exit status'}).`, ...stderrHints());
    return finish();
  }

  let output = seen.afterRequest;
  // An echo: the request comes back as output, ahead of (or instead of) the answer.
  const request = encodeRequest(protocol, setup.fields);
  const echoed = output.subarray(0, request.length).equals(request) ? request.length : startsWithLine(output, setup.fields);
  if (echoed > 0) {
    problem(
      "the request came back on the script's output (an echo):",
      setup.pty
        ? 'a terminal in cooked mode echoes what it is sent; the component switches it to raw mode, so the script (or something it runs, such as `stty sane`) turned echo back on. Keep it from touching the terminal, or use pipes: EXTERNAL_AUTH_PTY=false (and flush after each answer)'
        : 'the script writes what it reads back to stdout: it must write the answer and nothing else',
      'the component would take the echo for an answer and fail that request',
    );
    output = output.subarray(echoed);
  }

  let end = answerEnd(protocol, output);
  if (seen.timedOut && end !== null && seen.answerAfterEof) {
    const other = otherProtocol(protocol, output);
    problem(
      `the script did not answer within ${setup.timeoutMs / 1000} s; its answer came only when its input was closed.`,
      ...dump(redact(output)),
      other !== null
        ? `it looks like the ${other} protocol, which waited for the rest of a request the ${protocol} protocol does not send: set EXTERNAL_AUTH_PROTOCOL=${other}`
        : setup.pty
          ? 'it keeps its output until it exits: flush stdout after each answer'
          : 'it does not flush: over a pipe its output sits in a buffer until it exits. Flush stdout after each answer (Python: print(..., flush=True) or sys.stdout.flush()), or set EXTERNAL_AUTH_PTY=true',
    );
    return finish();
  }
  if (end === null) {
    if (seen.timedOut) {
      problem(
        `the script did not answer within ${setup.timeoutMs / 1000} s (EXTERNAL_AUTH_TIMEOUT).`,
        ...partialOutput(output),
        ...noAnswerHints(output.length),
      );
    } else {
      problem(`the script exited without answering (${seen.exit ? describeExit(seen.exit) : 'no exit status'}).`, ...partialOutput(output), ...stderrHints());
    }
    return finish();
  }

  let answer = fitToRequest(readAnswer(protocol, output.subarray(0, end)), setup.scramHash);
  if (answer.kind === 'invalid' && protocol !== 'ejabberd') {
    // Text, then a real answer: a banner, a prompt or a debug line on stdout.
    const next = answerEnd(protocol, output.subarray(end));
    const later = next === null ? null : fitToRequest(readAnswer(protocol, output.subarray(end, end + next)), setup.scramHash);
    if (later !== null && later.kind !== 'invalid' && otherProtocol(protocol, output) === null) {
      problem(
        `the script wrote a line that is not an answer before its answer (a banner, a prompt or a debug message on stdout?):`,
        ...dump(redact(output.subarray(0, end))),
        'the component would take that line for the answer, fail the request and restart the script: write only answers on stdout, messages on stderr',
      );
      output = output.subarray(end);
      end = next!;
      answer = later;
    }
  }
  const other = otherProtocol(protocol, output);
  const timing = seen.answerMs === undefined ? '' : ` after ${Math.round(seen.answerMs)} ms`;
  if (answer.kind === 'invalid') {
    problem(`the script's answer is not valid ${protocol} protocol: ${answer.why}.`, ...dump(redact(output)));
    if (other) problems.push(`  - it looks like the ${other} protocol: set EXTERNAL_AUTH_PROTOCOL=${other}, or make the script speak ${protocol}`);
    else problems.push('  - the component answers such a request with an error and restarts the script');
    return finish();
  }
  lines.push(`answer: ${answerText(answer, setup.scramHash)}${timing}`);

  const rest = output.subarray(end);
  if (rest.length > 0) {
    const extra = answerEnd(protocol, rest) !== null && readAnswer(protocol, rest.subarray(0, answerEnd(protocol, rest)!)).kind !== 'invalid';
    problem(
      extra ? 'the script answered twice: a second answer followed the first.' : `the script wrote ${rest.length} more bytes after its answer:`,
      ...dump(redact(rest)),
      protocol === 'tagged'
        ? 'the component drops an answer to a request it does not hold (logged and counted; the process is kept), but such a script is confused about its ids: answer each request exactly once'
        : `with the ${protocol} protocol answers carry no request id: every later answer would belong to the wrong request. The component restarts a script that does this; answer each request exactly once`,
    );
  }
  if (seen.exit?.beforeEof) {
    problem(
      `the script exited right after answering (${describeExit(seen.exit)}), before its input was closed.`,
      'the component keeps one process for many requests: it would restart the script after every request, with growing delays. Read requests in a loop until end of input',
    );
  }
  if (answer.kind === 'backend-error') {
    problem(
      'the script reports that its backend failed (ID:E): an outage, not a refusal; the component answers such a request with an error.',
      ...stderrHints(),
    );
  }
  return finish(answer.kind === 'yes' || answer.kind === 'credentials' ? EXIT_YES : answer.kind === 'no' ? EXIT_NO : EXIT_MISBEHAVED);

  function finish(code?: number): Verdict {
    const shown = setup.password === undefined ? setup.fields : `${setup.fields.slice(0, setup.fields.length - setup.password.length)}[password]`;
    const header = [`protocol ${protocol} over ${transport}, timeout ${setup.timeoutMs / 1000} s`, `sent: ${shown}`];
    if (problems.length === 0 && code !== undefined) {
      return {
        exitCode: code,
        lines: [...header, ...lines, code === EXIT_YES ? 'verdict: OK, the script said yes (1)' : 'verdict: OK, the script said no (0)'],
      };
    }
    return { exitCode: EXIT_MISBEHAVED, lines: [...header, ...lines, 'verdict: PROBLEM', ...problems, ...stderrTail()] };
  }

  function stderrTail(): string[] {
    const text = redact(seen.stderr).toString('utf8').trimEnd();
    if (text === '') return [];
    const tail = text.split('\n').slice(-STDERR_LINES);
    return ['last lines on stderr:', ...tail.map((line) => `  | ${line}`)];
  }

  function stderrHints(): string[] {
    return seen.stderr.length === 0 && !setup.pty ? ['it wrote nothing on stderr'] : [];
  }

  function partialOutput(bytes: Buffer): string[] {
    if (bytes.length === 0) return ['it wrote nothing at all on stdout'];
    const other = otherProtocol(protocol, bytes);
    return [
      `it wrote ${bytes.length} bytes, not a complete ${protocol} answer${protocol === 'ejabberd' ? '' : ' (no newline)'}:`,
      ...dump(redact(bytes)),
      ...(other ? [`it looks like the ${other} protocol: set EXTERNAL_AUTH_PROTOCOL=${other}`] : []),
    ];
  }

  function noAnswerHints(written: number): string[] {
    const hints: string[] = [];
    if (written === 0 && !setup.pty) {
      hints.push(
        'does it flush? Over a pipe, Python, Perl, C and others keep output in a buffer: flush stdout after each answer, or set EXTERNAL_AUTH_PTY=true',
      );
    }
    if (protocol === 'ejabberd')
      hints.push('is it a line-protocol script? It waits for a newline the ejabberd framing never sends: set EXTERNAL_AUTH_PROTOCOL=generic');
    if (protocol === 'generic')
      hints.push('is it an ejabberd-protocol script? It reads the first two bytes as a length and waits for more: set EXTERNAL_AUTH_PROTOCOL=ejabberd');
    if (protocol === 'tagged')
      hints.push(
        `does it speak the tagged protocol? The request began with the id "${TAGGED_ID}:"; otherwise set EXTERNAL_AUTH_PROTOCOL to generic or ejabberd`,
      );
    hints.push('or its backend is slow: check what it waits for, or raise EXTERNAL_AUTH_TIMEOUT');
    return hints;
  }
}

/**
 * A `scram` request takes `0` or credentials that parse; every other kind `1` or `0`. What does
 * not fit says why, in words that name the rule broken (never the keys).
 */
function fitToRequest(answer: Answer, hash: ScramHash | undefined): Answer {
  if (hash === undefined) {
    return answer.kind === 'credentials' ? { kind: 'invalid', why: 'it answered 1 followed by credentials, which only a scram request takes' } : answer;
  }
  if (answer.kind === 'yes') return { kind: 'invalid', why: 'a bare 1 carries no credentials: answer 0 or 1:ITERATIONS:SALT:STOREDKEY:SERVERKEY' };
  if (answer.kind === 'credentials' && parseScramCredentials(answer.text, hash) === null) {
    return {
      kind: 'invalid',
      why: `the credentials do not parse: expected 1:ITERATIONS:SALT:STOREDKEY:SERVERKEY, iterations 1 to ${MAX_SCRAM_ITERATIONS}, the salt non-empty base64 with padding, both keys base64 with padding of exactly the ${hash} digest length`,
    };
  }
  return answer;
}

function answerText(answer: Answer, hash: ScramHash | undefined): string {
  if (answer.kind === 'credentials' && hash !== undefined) {
    const credentials = parseScramCredentials(answer.text, hash)!;
    const bytes = Buffer.from(credentials.storedKey, 'base64').length;
    return `1 (${hash} credentials: ${credentials.iterations} iterations, salt ${credentials.salt}, stored key and server key of ${bytes} bytes each [masked])`;
  }
  if (answer.kind === 'yes') return '1 (yes)';
  if (answer.kind === 'no') return '0 (no)';
  return 'E (backend error)';
}

function describeExit(exit: NonNullable<ScriptObservation['exit']>): string {
  if (exit.spawnError !== undefined) return `it could not be started: ${exit.spawnError}`;
  if (exit.signal !== null) return `killed by signal ${exit.signal}`;
  return `exit status ${exit.code}`;
}

/** Length of the first line when it is `fields` (with an optional CR): a line-wise echo. */
function startsWithLine(output: Buffer, fields: string): number {
  const newline = output.indexOf(0x0a);
  if (newline === -1) return 0;
  const line = output.subarray(0, newline).toString('utf8').replace(/\r$/, '');
  return line === fields || line.endsWith(`:${fields}`) ? newline + 1 : 0;
}

/**
 * For a scram probe: every run of 16 or more base64 or hex characters is masked wherever the
 * script's output or stderr is shown, since a key may sit in any of them and a malformed answer
 * gives no reliable place to look.
 */
function maskKeys(bytes: Buffer): Buffer {
  return Buffer.from(
    bytes.toString('latin1').replace(/[A-Za-z0-9+/=_-]{16,}/g, (run) => '*'.repeat(run.length)),
    'latin1',
  );
}

function redactBytes(bytes: Buffer, password: string | undefined): Buffer {
  if (password === undefined || password === '') return bytes;
  const secret = Buffer.from(password);
  const copy = Buffer.from(bytes);
  for (let at = copy.indexOf(secret); at !== -1; at = copy.indexOf(secret, at + secret.length)) copy.fill(0x2a, at, at + secret.length);
  // Then the forms a script's logging turns it into (repr, JSON, percent, base64), as the daemon
  // masks them in the script's stderr. Read as UTF-8 when it is, else byte for byte, so that
  // the bytes shown are never changed by the decoding.
  const memory = new SecretMemory(1);
  memory.remember(password);
  const utf8 = isUtf8(copy);
  return Buffer.from(memory.redact(copy.toString(utf8 ? 'utf8' : 'latin1')), utf8 ? 'utf8' : 'latin1');
}

/** The first bytes as hex and as text, two lines, indented. */
function dump(bytes: Buffer): string[] {
  const head = bytes.subarray(0, HEX_DUMP_BYTES);
  const more = bytes.length > head.length ? ` … (${bytes.length} bytes in all)` : '';
  return [`    hex:  ${[...head].map((byte) => byte.toString(16).padStart(2, '0')).join(' ')}${more}`, `    text: ${printable(head)}`];
}

function printable(bytes: Buffer): string {
  return [...bytes.toString('latin1')]
    .map((c) => (c >= ' ' && c <= '~' ? c : c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
    .join('');
}
