import type { Logger } from 'pino';
import { restartDelay } from './core/backoff.js';
import { CredentialCache } from './cache/credential-cache.js';
import { codecFor } from './codec/index.js';
import type { Config } from './config/config.js';
import { ScriptPool } from './pool/script-pool.js';
import { launchPipeProcess } from './worker/pipe-process.js';
import { launchPtyProcess } from './worker/pty-process.js';
import type { ScriptLauncher } from './worker/script-process.js';
import { ScriptWorker } from './worker/script-worker.js';
import { ComponentMetrics, type ComponentProbe } from './ops/metrics.js';
import { startOpsServer, type OpsServer } from './ops/http-server.js';
import { ComponentLink } from './xmpp/component-link.js';
import { createStanzaRouter } from './xmpp/stanza-router.js';

/** Requests one process may hold at once when pipelining. */
export const PIPELINE_DEPTH = 256;
const CLOSE_GRACE_MS = 2000;
/** Said when a script over pipes timed out without writing anything: the two usual causes, and the tool that tells them apart. */
function silentScriptHint(protocol: string): string {
  return `the script wrote nothing at all: it may be block-buffering its stdout over a pipe (flush after each answer, or set EXTERNAL_AUTH_PTY=true), or speak another protocol than EXTERNAL_AUTH_PROTOCOL=${protocol}; run 'extauth-component check-script isuser SOMEONE' with the same settings to find out`;
}

export interface RunningComponent {
  /** The server connection's state for metrics and health: online, state, reconnects, lastError, bufferedBytes. */
  readonly link: Pick<ComponentLink, 'online' | 'state' | 'reconnects' | 'lastError' | 'bufferedBytes'>;
  /** Stops taking requests, answers those in flight, closes the scripts and the stream. */
  stop(): Promise<void>;
  /** Replaces the script processes one by one without failing a request (SIGHUP). */
  restartScripts(): Promise<void>;
  /** SIGKILL to every script process group, synchronously (a second signal: exiting now). */
  killScripts(): void;
}

export function startComponent(config: Config, log: Logger, launch: ScriptLauncher = config.pty ? launchPtyProcess : launchPipeProcess): RunningComponent {
  const codec = codecFor(config.protocol);
  const command = { file: config.command.file, args: config.command.args, env: config.scriptEnv };
  // Metrics exist only with HTTP_LISTEN: without it, nothing on the request path even checks for them.
  const probe: ComponentProbe = {
    queued: () => pool.queueDepth,
    inFlight: () => pool.inFlight,
    processesUp: () => pool.processesUp,
    answering: () => pool.answering,
    restarts: () => pool.restarts,
    strayAnswers: () => pool.strayAnswers,
    connected: () => link.online,
    reconnects: () => link.reconnects,
    cache: () => (cache ? { ...cache.stats, entries: cache.size } : null),
  };
  const metrics = config.httpListen ? new ComponentMetrics(probe, { queueLimit: config.queueLimit }) : null;
  const pool = new ScriptPool({
    processes: config.processes,
    depth: config.blocking ? 1 : PIPELINE_DEPTH,
    queueLimit: config.queueLimit,
    timeoutMs: config.timeoutMs,
    codec,
    log,
    createWorker: ({ id, depth }, events) =>
      new ScriptWorker(
        {
          id,
          depth,
          command,
          codec,
          launch,
          timeoutMs: config.timeoutMs,
          log,
          restartDelay,
          closeGraceMs: CLOSE_GRACE_MS,
          ...(config.pty ? {} : { silentTimeoutHint: silentScriptHint(config.protocol) }),
        },
        events,
      ),
  });
  // Router -> credential cache (when on) -> pool.
  const cache =
    config.cacheTtlMs > 0
      ? new CredentialCache({ ttlMs: config.cacheTtlMs, staleMs: config.cacheStaleMs, size: config.cacheSize, log }, (request, arrivedAt, done) =>
          pool.submit(request, arrivedAt, done),
        )
      : null;
  let accepting = true;
  const link: ComponentLink = new ComponentLink({
    service: config.service,
    domain: config.domain,
    secret: config.secret,
    log,
    // Backpressure end to end: while the server is not reading our replies, we stop reading
    // both its requests (the link does) and the scripts' answers (replies would pile up here).
    onCongested: () => pool.pause(),
    onDrained: () => pool.resume(),
    onStanza: createStanzaRouter({
      domain: config.domain,
      allow: config.allow,
      name: 'extauth-component',
      log,
      submit: cache ? cache.submit : (request, arrivedAt, done) => pool.submit(request, arrivedAt, done),
      send: (stanza) => {
        if (!link.send(stanza)) log.debug('reply dropped: not connected');
      },
      accepting: () => accepting,
      forget: (user, server) => cache?.forgetUser(user, server),
      ...(metrics ? { answered: (kind: string, outcome: string, ms: number) => metrics.answered(kind, outcome, ms) } : {}),
    }),
  });

  log.info(
    {
      domain: config.domain,
      service: config.service.uri,
      protocol: config.protocol,
      processes: config.processes,
      blocking: config.blocking,
      timeoutMs: config.timeoutMs,
      pty: config.pty,
      command: config.command.file,
      cacheTtlMs: config.cacheTtlMs,
      cacheStaleMs: config.cacheStaleMs,
    },
    'starting',
  );
  pool.start();
  link.start();
  let ops: Promise<OpsServer> | null = null;
  if (metrics && config.httpListen) {
    ops = startOpsServer(config.httpListen, metrics, probe, log);
    ops.catch((error: Error) => {
      // Asked for and not available: better to fail loudly at start than to run unmonitored.
      log.fatal({ err: error }, 'HTTP_LISTEN: the metrics and health server cannot start');
      process.exit(1);
    });
  }

  let stopping: Promise<void> | null = null;
  return {
    link,
    stop() {
      stopping ??= (async () => {
        accepting = false;
        log.info({ inFlight: pool.pending }, 'stopping: answering requests in flight');
        await pool.drain();
        await pool.close();
        await link.stop();
        await ops?.then(
          (server) => server.close(),
          () => {},
        );
        log.info('stopped');
      })();
      return stopping;
    },
    restartScripts: () => pool.restartAll(),
    killScripts: () => pool.killAll(),
  };
}
