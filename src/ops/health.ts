import { FAILING_AFTER_RESTARTS } from '../core/restart.js';
import type { ComponentProbe } from './metrics.js';

export interface HealthReport {
  readonly healthy: boolean;
  readonly body: {
    readonly status: 'ok' | 'unavailable';
    readonly connected: boolean;
    readonly processesUp: number;
    readonly processesAnswering: number;
    readonly inFlight: number;
    readonly queued: number;
    /** Why the component cannot answer logins; empty when healthy. */
    readonly problems: readonly string[];
  };
}

/**
 * Healthy: connected to the server, and at least one script process up and answering (not
 * one that is restarted again and again without ever answering).
 */
export function checkHealth(probe: ComponentProbe): HealthReport {
  const connected = probe.connected();
  const answering = probe.answering();
  const processesUp = probe.processesUp();
  const problems: string[] = [];
  if (!connected) problems.push('not connected to the XMPP server');
  if (answering.processes === 0) {
    problems.push(
      answering.failuresInARow >= FAILING_AFTER_RESTARTS
        ? `the auth script keeps failing: restarted ${answering.failuresInARow} times in a row without answering (see the log)`
        : 'no auth script process is up',
    );
  }
  return {
    healthy: problems.length === 0,
    body: {
      status: problems.length === 0 ? 'ok' : 'unavailable',
      connected,
      processesUp,
      processesAnswering: answering.processes,
      inFlight: probe.inFlight(),
      queued: probe.queued(),
      problems,
    },
  };
}
