import type { AuthRequest } from '../core/auth-request.js';

/** The colon-separated fields every script protocol carries, in order. */
export function requestFields(request: AuthRequest): string {
  const head = `${request.kind}:${request.user}:${request.server}`;
  if (request.hash !== undefined) return `${head}:${request.hash}`;
  return request.password === undefined ? head : `${head}:${request.password}`;
}
