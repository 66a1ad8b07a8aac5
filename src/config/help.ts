import { SETTINGS } from './config.js';

export function helpText(version: string): string {
  const variables = Object.values(SETTINGS);
  const width = Math.max(...variables.map((spec) => spec.name.length));
  const lines = [
    `extauth-component ${version}: an XEP-0114 component that authenticates XMPP users through an external script`,
    '',
    'Usage: extauth-component [--help | --version]',
    '       extauth-component check-script [--env-file FILE] KIND USER [SERVER]   (password, if any, on the first line of stdin)',
    '       extauth-component check-server',
    '',
    'Configuration comes from environment variables only:',
    '',
    ...variables.flatMap((spec) => [`  ${spec.name.padEnd(width)}  default: ${spec.shown}`, `  ${' '.repeat(width)}  ${spec.help}`]),
    '',
    'Signals: SIGTERM/SIGINT shut down cleanly; SIGHUP restarts the script processes one by one.',
    'Exit status: 0 after a clean shutdown, 2 for a configuration error, 1 for anything else.',
  ];
  return `${lines.join('\n')}\n`;
}
