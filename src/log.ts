import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/config.js';

/**
 * JSON lines on stdout, times in ISO 8601 (UTC). Nothing logs a password or a request line in the first place; the
 * redaction is a second lock on the same door.
 */
export function createLogger(level: LogLevel, destination: pino.DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  return pino(
    {
      name: 'extauth-component',
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', 'secret', '*.password', '*.secret', 'request.password'], censor: '[redacted]' },
    },
    destination,
  );
}
