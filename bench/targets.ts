// The project's performance targets (the "Targets" table of BENCHMARKS.md), checked against what
// this run measured.
import { FLAT_TOLERANCE_MiB, IN_FLIGHT_LIMIT_MiB, IN_FLIGHT_WINDOW } from './long-run.js';
import { value, type BenchResults } from './results.js';
import { sameScenario, type ScenarioSpec } from './scenarios.js';

export type TargetId =
  | 'instant-rate'
  | 'instant-ratio'
  | 'slow-rate'
  | 'prosody-ratio'
  | 'prosody-slow-rate'
  | 'prosody-one-at-a-time'
  | 'stream-open-p50'
  | 'stream-open-p99'
  | 'ejabberd-vs-native'
  | 'long-run-flat'
  | 'in-flight-rss';

export interface TargetCheck {
  id: TargetId;
  target: string;
  measured: string;
  /** null: not measured in this run. */
  met: boolean | null;
  /** The component scenario whose profile explains a miss, if any. */
  profileScenario?: ScenarioSpec;
}

export const INSTANT_TARGET: ScenarioSpec = { script: 'instant', protocol: 'generic', pipelined: true, processes: 2 };
export const SLOW_TARGET: ScenarioSpec = { script: '20ms', protocol: 'generic', pipelined: false, processes: 8 };
const INSTANT_RATE = 60_000;
const INSTANT_RATIO = 0.2;
const SLOW_RATE = 0.95 * 400;
const PROSODY_RATIO = 0.8;
const PROSODY_SLOW_RATE = 350;
const PROSODY_ONE_AT_A_TIME_RATIO = 0.9;
const STREAM_OPEN_P50_MS = 5;
const STREAM_OPEN_P99_MS = 10;

export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const scenario = (spec: ScenarioSpec) => results.scenarios.find((s) => sameScenario(s.spec, spec))?.summary;

  const instant = scenario(INSTANT_TARGET);
  checks.push({
    id: 'instant-rate',
    target: `instant script, pipelined, 2 processes: ≥ ${INSTANT_RATE.toLocaleString('en')} auth IQs/s`,
    measured: instant ? `${rate(instant.rate)}/s` : 'not measured',
    met: instant ? instant.rate >= INSTANT_RATE : null,
    profileScenario: INSTANT_TARGET,
  });
  checks.push({
    id: 'instant-ratio',
    target: `instant script, pipelined, 2 processes: ≥ ${INSTANT_RATIO}× the bare script`,
    measured: instant ? `${instant.ratio.toFixed(3)}× (${rate(instant.rate)} vs ${rate(instant.bareRate)}/s)` : 'not measured',
    met: instant ? instant.ratio >= INSTANT_RATIO : null,
    profileScenario: INSTANT_TARGET,
  });
  const slow = scenario(SLOW_TARGET);
  checks.push({
    id: 'slow-rate',
    target: `20 ms script, 8 processes, lockstep: ≥ 95 % of 400/s (${SLOW_RATE}/s)`,
    measured: slow ? `${slow.rate.toFixed(1)}/s (${((slow.rate / 400) * 100).toFixed(1)} %; bare script ${slow.bareRate.toFixed(1)}/s)` : 'not measured',
    met: slow ? slow.rate >= SLOW_RATE : null,
    profileScenario: SLOW_TARGET,
  });

  const prosody = value(results.prosody);
  const plain = prosody?.internalPlain.summary;
  const viaComponent = prosody?.componentInstant.summary;
  checks.push({
    id: 'prosody-ratio',
    target: `Prosody logins through the component (instant script) ≥ ${PROSODY_RATIO}× internal_plain`,
    measured:
      plain && viaComponent
        ? `${(viaComponent.rate / plain.rate).toFixed(2)}× (${rate(viaComponent.rate)} vs ${rate(plain.rate)} logins/s)`
        : skipped(results.prosody),
    met: plain && viaComponent ? viaComponent.rate >= PROSODY_RATIO * plain.rate : null,
  });
  const plainSerial = prosody?.internalPlainSerial?.summary;
  const viaComponentSerial = prosody?.componentInstantSerial?.summary;
  checks.push({
    id: 'prosody-one-at-a-time',
    target: `Prosody, one login at a time: through the component (instant script × 2) ≥ ${PROSODY_ONE_AT_A_TIME_RATIO}× internal_plain`,
    measured:
      plainSerial && viaComponentSerial
        ? `${(viaComponentSerial.rate / plainSerial.rate).toFixed(2)}× (p50 ${ms(viaComponentSerial.p50Ms)} vs ${ms(plainSerial.p50Ms)})`
        : skipped(results.prosody),
    met: plainSerial && viaComponentSerial ? viaComponentSerial.rate >= PROSODY_ONE_AT_A_TIME_RATIO * plainSerial.rate : null,
  });
  const slowProsody = prosody?.component20ms.summary;
  checks.push({
    id: 'prosody-slow-rate',
    target: `Prosody, 20 ms script × 8 processes: ≥ ${PROSODY_SLOW_RATE} logins/s`,
    measured: slowProsody ? `${slowProsody.rate.toFixed(0)} logins/s` : skipped(results.prosody),
    met: slowProsody ? slowProsody.rate >= PROSODY_SLOW_RATE : null,
  });
  checks.push({
    id: 'stream-open-p50',
    target: `…meanwhile an unrelated client's stream opens: p50 ≤ ${STREAM_OPEN_P50_MS} ms`,
    measured: slowProsody ? `p50 ${ms(slowProsody.probeP50Ms)} (idle server: ${ms(slowProsody.idleProbeP50Ms)})` : skipped(results.prosody),
    met: slowProsody ? slowProsody.probeP50Ms <= STREAM_OPEN_P50_MS : null,
  });
  checks.push({
    id: 'stream-open-p99',
    target: `…and p99 ≤ ${STREAM_OPEN_P99_MS} ms`,
    measured: slowProsody ? `p99 ${ms(slowProsody.probeP99Ms)} (idle server: ${ms(slowProsody.idleProbeP99Ms)})` : skipped(results.prosody),
    met: slowProsody ? slowProsody.probeP99Ms <= STREAM_OPEN_P99_MS : null,
  });

  const ejabberd = value(results.ejabberd)?.find((c) => c.delayMs === 20);
  checks.push({
    id: 'ejabberd-vs-native',
    target: 'ejabberd, 20 ms script: logins through the component ≥ native extauth, same pool size',
    measured: ejabberd
      ? `${rate(ejabberd.component.summary.rate)} vs ${rate(ejabberd.native.summary.rate)} logins/s (${(ejabberd.component.summary.rate / ejabberd.native.summary.rate).toFixed(2)}×, pool ${ejabberd.processes})`
      : skipped(results.ejabberd),
    met: ejabberd ? ejabberd.component.summary.rate >= ejabberd.native.summary.rate : null,
  });

  const longRun = value(results.longRun);
  checks.push({
    id: 'long-run-flat',
    target: `long run (${results.mode.longRunRequests.toLocaleString('en')} requests pipelined): RSS flat (end ≤ start + ${FLAT_TOLERANCE_MiB} MiB)`,
    measured: longRun ? `start ${mib(longRun.rssStartMiB)}, peak ${mib(longRun.rssPeakMiB)}, end ${mib(longRun.rssEndMiB)}` : skipped(results.longRun),
    met: longRun ? longRun.flat && longRun.failures === 0 : null,
  });
  const inFlight = value(results.inFlight);
  checks.push({
    id: 'in-flight-rss',
    target: `${IN_FLIGHT_WINDOW.toLocaleString('en')} requests in flight: peak RSS < 100 MB (${IN_FLIGHT_LIMIT_MiB.toFixed(1)} MiB)`,
    measured: inFlight ? `peak ${mib(inFlight.peakRssMiB)} (idle ${mib(inFlight.idleRssMiB)})` : skipped(results.inFlight),
    met: inFlight ? inFlight.underLimit && inFlight.failures === 0 : null,
  });
  return checks;
}

/** The component scenarios to profile: those behind missed targets, each once. */
export function scenariosToProfile(checks: TargetCheck[]): ScenarioSpec[] {
  const specs: ScenarioSpec[] = [];
  for (const check of checks) {
    if (check.met === false && check.profileScenario && !specs.some((s) => sameScenario(s, check.profileScenario!))) specs.push(check.profileScenario);
  }
  return specs;
}

function rate(perSecond: number): string {
  return Math.round(perSecond).toLocaleString('en');
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

function mib(value: number): string {
  return `${value.toFixed(1)} MiB`;
}

function skipped(outcome: { skipped: string } | object): string {
  return 'skipped' in outcome ? `not measured: ${outcome.skipped}` : 'not measured';
}
