import { type AuthRequest, SCRAM_HASHES, type ScramHash } from '../core/auth-request.js';
import { ScramCredentials } from '../core/scram-credentials.js';
import type { ScriptAnswer } from './codec.js';

/** The most PBKDF2 rounds accepted: more is a typo or an attempt to make the server spin. */
export const MAX_SCRAM_ITERATIONS = 10_000_000;

const ITERATIONS = /^[1-9][0-9]{0,7}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})+$|^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$/;

/** Decoded length of `text` when it is canonical padded base64 (what re-encoding gives back), else null. */
function base64Length(text: string): number | null {
  if (!BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  // Unused bits in the last character must be zero: one credential, one spelling.
  return bytes.toString('base64') === text ? bytes.length : null;
}

/**
 * Reads `ITERATIONS:SALT:STOREDKEY:SERVERKEY` (what follows `1:`) strictly: iterations a
 * decimal from 1 to 10,000,000 without leading zeros; salt, stored key and server key base64
 * with padding; the salt not empty; both keys exactly as long as the hash's digest. Anything
 * else is null: a bad answer, never a refusal.
 */
export function parseScramCredentials(text: string, hash: ScramHash): ScramCredentials | null {
  const parts = text.split(':');
  if (parts.length !== 4) return null;
  const [iterations, salt, storedKey, serverKey] = parts as [string, string, string, string];
  if (!ITERATIONS.test(iterations) || Number(iterations) > MAX_SCRAM_ITERATIONS) return null;
  const saltLength = base64Length(salt);
  if (saltLength === null || saltLength === 0) return null;
  const keyLength = SCRAM_HASHES[hash];
  if (base64Length(storedKey) !== keyLength || base64Length(serverKey) !== keyLength) return null;
  return new ScramCredentials(Number(iterations), salt, storedKey, serverKey);
}

/**
 * What an answer means for the request it answers. `scram` takes `0` or valid credentials
 * (a bare `1` says nothing usable); every other kind takes `1` or `0`. Whatever does not fit
 * its request is `'invalid'`: a bad answer.
 */
export function readAnswer(request: AuthRequest, answer: ScriptAnswer): boolean | ScramCredentials | 'backend-error' | 'invalid' {
  if (typeof answer !== 'object') {
    return request.kind === 'scram' && answer === true ? 'invalid' : answer;
  }
  if (request.kind !== 'scram' || request.hash === undefined) return 'invalid';
  return parseScramCredentials(answer.credentials, request.hash) ?? 'invalid';
}
