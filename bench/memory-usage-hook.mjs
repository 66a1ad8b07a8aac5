// Preloaded into the component for a memory breakdown (NODE_OPTIONS=--import=<this file>):
// samples process.memoryUsage() every 20 ms; on SIGUSR2 writes the peak of each field (bytes)
// as JSON to $BENCH_MEMORY_USAGE and starts over. Does nothing without BENCH_MEMORY_USAGE.
import { renameSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_MEMORY_USAGE;
if (file) {
  let peaks = {};
  const sample = () => {
    const usage = process.memoryUsage();
    for (const [field, bytes] of Object.entries(usage)) peaks[field] = Math.max(peaks[field] ?? 0, bytes);
  };
  setInterval(sample, 20).unref();
  process.on('SIGUSR2', () => {
    sample();
    writeFileSync(`${file}.part`, JSON.stringify(peaks));
    renameSync(`${file}.part`, file);
    peaks = {};
  });
}
