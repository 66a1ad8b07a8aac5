import { inspect } from 'node:util';

/**
 * A user's SCRAM credentials as a script gave them, validated: base64 as it was sent (with
 * padding), the key lengths those of the hash. The stored and server keys are as good as a
 * password hash to an attacker, so this object never shows them when logged or printed:
 * only the reply to the server reads its fields.
 */
export class ScramCredentials {
  constructor(
    readonly iterations: number,
    readonly salt: string,
    readonly storedKey: string,
    readonly serverKey: string,
  ) {}

  toJSON(): string {
    return '[scram credentials]';
  }

  [inspect.custom](): string {
    return 'ScramCredentials [redacted]';
  }
}
