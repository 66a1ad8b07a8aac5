#!/usr/bin/env node
import { startComponent } from './app.js';
import { type Config, ConfigErrors, loadConfig, unknownVariableWarnings } from './config/config.js';
import { helpText } from './config/help.js';
import { closeInheritedDescriptors } from './worker/inherited-descriptors.js';
import { createLogger } from './log.js';
import { VERSION } from './version.js';
import { loadNodePty } from './worker/pty-process.js';

const EXIT_FAILURE = 1;
const EXIT_CONFIG = 2;

function fail(lines: string, code: number): never {
  for (const line of lines.split('\n')) process.stderr.write(`extauth-component: ${line}\n`);
  process.exit(code);
}

const [arg, ...extra] = process.argv.slice(2);
if (arg === '--help' || arg === '-h') {
  process.stdout.write(helpText(VERSION));
  process.exit(0);
}
if (arg === '--version' || arg === '-V') {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}
if (arg === 'check-script') {
  const { checkScript } = await import('./ops/check-script.js');
  const code = await checkScript(extra, process.env, {
    stdin: process.stdin,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
  process.exit(code);
}
if (arg === 'check-server' && extra.length === 0) {
  const { runCheckServer } = await import('./ops/check-server.js');
  const code = await runCheckServer(process.env, {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`extauth-component: ${line}\n`),
  });
  process.exit(code);
}
if (arg !== undefined || extra.length > 0) fail(`unknown argument '${arg}'; configuration comes from environment variables (see --help)`, EXIT_CONFIG);

function loadOrExit(): Config {
  try {
    return loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigErrors) {
      // A misspelt name is often why a required setting looks unset: say so next to the errors.
      for (const warning of unknownVariableWarnings(process.env)) process.stderr.write(`extauth-component: warning: ${warning}\n`);
      fail(error.message, EXIT_CONFIG);
    }
    throw error;
  }
}
const config = loadOrExit();
if (config.pty) await loadNodePty().catch((error: Error) => fail(`EXTERNAL_AUTH_PTY: ${error.message}`, EXIT_CONFIG));

const log = createLogger(config.logLevel);
for (const warning of config.warnings) log.warn({ event: 'config.warning' }, warning);
process.on('uncaughtException', (error) => {
  log.fatal({ event: 'component.unexpected-error', err: error }, 'unexpected error');
  process.exit(EXIT_FAILURE);
});

const closed = closeInheritedDescriptors();
if (closed > 0) log.debug({ event: 'component.descriptors-closed', count: closed }, 'closed inherited file descriptors so scripts cannot inherit them');
const component = await startComponent(config, log).catch((error: Error) => {
  // Asked for and not available: better to fail loudly at start than to run unmonitored.
  log.fatal({ event: 'http.cannot-start', err: error }, 'HTTP_LISTEN: the metrics and health server cannot start');
  process.exit(EXIT_FAILURE);
});
let signalled = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (signalled) {
      log.warn({ event: 'component.killed', signal }, 'second signal: killing the scripts and exiting now');
      // Scripts run in process groups of their own: nothing else would stop one that ignores EOF.
      component.killScripts();
      process.exit(EXIT_FAILURE);
    }
    signalled = true;
    log.info({ event: 'component.signal', signal }, 'shutting down');
    component.stop().then(
      () => process.exit(0),
      (error: Error) => {
        log.error({ event: 'component.stop-failed', err: error }, 'shutdown failed');
        process.exit(EXIT_FAILURE);
      },
    );
  });
}
process.on('SIGHUP', () => {
  log.info({ event: 'rolling.requested' }, 'SIGHUP: restarting the script processes one by one');
  component.restartScripts().catch((error: Error) => log.error({ event: 'rolling.failed', err: error }, 'rolling restart failed'));
});
