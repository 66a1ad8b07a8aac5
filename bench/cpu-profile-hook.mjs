// Preloaded into the component for profiling (NODE_OPTIONS=--import=<this file>, since
// --cpu-prof itself is not allowed in NODE_OPTIONS): the first SIGUSR2 starts V8's CPU profiler,
// the second stops it and writes the profile (.cpuprofile JSON) to $BENCH_CPU_PROFILE. So the
// profile covers exactly the load, not start-up. Does nothing without BENCH_CPU_PROFILE.
import { renameSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const file = process.env.BENCH_CPU_PROFILE;
if (file) {
  const session = new Session();
  session.connect();
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      session.post('Profiler.enable');
      session.post('Profiler.setSamplingInterval', { interval: 200 });
      session.post('Profiler.start');
      running = true;
      return;
    }
    running = false;
    // A session on the main thread answers synchronously.
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      writeFileSync(`${file}.part`, JSON.stringify(result.profile));
      renameSync(`${file}.part`, file); // appears whole
    });
  });
}
