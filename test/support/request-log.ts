import { existsSync, readFileSync } from 'node:fs';

export interface LoggedRequest {
  op: string;
  user: string;
  server: string;
  pid: string;
  answer: string;
}

/** The requests the e2e fixture scripts answered ("op user server pid answer"), from line `from` on. */
export function readRequestLog(file: string, from = 0): LoggedRequest[] {
  return (existsSync(file) ? readFileSync(file, 'utf8') : '')
    .split('\n')
    .filter(Boolean)
    .slice(from)
    .map((line) => {
      const [op = '', user = '', server = '', pid = '', answer = ''] = line.split(' ');
      return { op, user, server, pid, answer };
    });
}
