import { VARIABLES } from './config.js';

export function helpText(version: string): string {
  const width = Math.max(...VARIABLES.map(([name]) => name.length));
  const lines = [
    `extauth-component ${version}: an XEP-0114 component that authenticates XMPP users through an external script`,
    '',
    'Usage: extauth-component [--help | --version]',
    '',
    'Configuration comes from environment variables only:',
    '',
    ...VARIABLES.flatMap(([name, fallback, meaning]) => [`  ${name.padEnd(width)}  default: ${fallback}`, `  ${' '.repeat(width)}  ${meaning}`]),
    '',
    'Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a configuration error, 1 for anything else.',
  ];
  return `${lines.join('\n')}\n`;
}
