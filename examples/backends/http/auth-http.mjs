// @ts-check
// auth-http: extauth-component's script for accounts behind an HTTP service. Configured only by
// environment variables; see docs/backends.md. Needs nothing but Node (built-in fetch).
//
//   AUTH_HTTP_URL      the endpoint every request is POSTed to (required; http:// or https://)
//   AUTH_HTTP_TOKEN    sent as `Authorization: Bearer TOKEN` (optional)
//   AUTH_HTTP_TIMEOUT  seconds to wait for the whole response (default 3)
//
// Each request is POSTed as JSON {"kind", "user", "server", "password"?} ("password" for auth,
// setpass and tryregister). The service answers 200 with {"result": true} or {"result": false}.
// A scram request is {"kind": "scram", "user", "server", "hash"} (hash `sha-1`, `sha-256` or
// `sha-512`), answered {"result": false} or {"result": true, "iterations": N, "salt": B64,
// "storedKey": B64, "serverKey": B64} (standard base64 with padding, keys as long as the hash's
// digest); the keys are checked before they are answered and never logged. Anything else -- another status, a redirect, a body that is not that JSON, no answer in time,
// no connection -- is a backend failure, never a refusal (lib/script-protocol.mjs). In tagged,
// requests are sent concurrently.

import { env } from 'node:process';
import { BackendError, ConfigError, runBackend } from '../lib/script-protocol.mjs';

const NAME = 'auth-http';
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The bytes of a base64 field of a scram response: standard base64 with padding, exactly as
 * re-encoding the bytes gives it (the form the component accepts). The message names the field,
 * never its value.
 * @param {Record<string, unknown>} data
 * @param {string} field
 */
function base64Field(data, field) {
  const text = data[field];
  const bytes = typeof text === 'string' ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (bytes.length === 0 || bytes.toString('base64') !== text) throw new BackendError(`scram response has no base64 "${field}"`);
  return bytes;
}

/**
 * The credentials of a `{"result": true, ...}` scram response; their lengths are checked by the caller.
 * @param {Record<string, unknown>} data
 */
function scramCredentialsOf(data) {
  const { iterations } = data;
  if (typeof iterations !== 'number' || !Number.isInteger(iterations)) throw new BackendError('scram response has no integer "iterations"');
  return {
    iterations,
    salt: base64Field(data, 'salt'),
    storedKey: base64Field(data, 'storedKey'),
    serverKey: base64Field(data, 'serverKey'),
  };
}

function configure() {
  const text = env.AUTH_HTTP_URL;
  if (!text) throw new ConfigError('AUTH_HTTP_URL is required (the URL requests are POSTed to)');
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError('AUTH_HTTP_URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('AUTH_HTTP_URL must be an http:// or https:// URL');
  const timeoutText = env.AUTH_HTTP_TIMEOUT || '3';
  const timeout = Number(timeoutText);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600)
    throw new ConfigError(`AUTH_HTTP_TIMEOUT must be a number of seconds above 0, not ${JSON.stringify(timeoutText)}`);
  const token = env.AUTH_HTTP_TOKEN;
  if (token !== undefined && /[\u0000-\u001f\u007f]/.test(token)) throw new ConfigError('AUTH_HTTP_TOKEN must not contain control characters');
  return { url, timeoutMs: timeout * 1000, token: token || undefined };
}

/**
 * Why fetch failed, without anything the service sent.
 * @param {unknown} error
 * @param {number} timeoutMs
 */
function describe(error, timeoutMs) {
  if (!(error instanceof Error)) return 'request failed';
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return `no response within ${timeoutMs / 1000} s`;
  const cause = /** @type {{ code?: unknown, message?: unknown } | undefined} */ (error.cause);
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return `request failed${code ? `: ${code}` : typeof cause?.message === 'string' && cause.message ? `: ${cause.message}` : ''}`;
}

await runBackend(NAME, async () => {
  const { url, timeoutMs, token } = configure();
  /** @type {Record<string, string>} */
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;

  return {
    async handle({ kind, user, server, password, hash }) {
      /** @type {Record<string, string>} */
      const body = { kind, user, server };
      if (hash !== undefined) body.hash = hash;
      if (password !== undefined) {
        try {
          body.password = utf8.decode(password);
        } catch {
          return false; // not UTF-8: it cannot be anyone's password in JSON
        }
      }
      const signal = AbortSignal.timeout(timeoutMs);
      let response;
      try {
        response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), redirect: 'error', signal });
      } catch (error) {
        throw new BackendError(describe(error, timeoutMs));
      }
      if (response.status !== 200) {
        await response.body?.cancel().catch(() => {});
        throw new BackendError(`HTTP status ${response.status}`);
      }
      /** @type {unknown} */
      let parsed;
      try {
        parsed = JSON.parse(await response.text());
      } catch (error) {
        // Never the body in the log: a broken service may echo what it was sent.
        throw new BackendError(error instanceof SyntaxError ? 'response is not JSON' : describe(error, timeoutMs));
      }
      const data = /** @type {Record<string, unknown>} */ (typeof parsed === 'object' && parsed !== null ? parsed : {});
      if (typeof data.result !== 'boolean') throw new BackendError('response has no boolean "result"');
      if (kind === 'scram' && data.result) return scramCredentialsOf(data);
      return data.result;
    },
  };
});
