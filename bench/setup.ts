// npm run bench:setup -- --from DIR | --download
//
// Sets up Prosody's in-process module for the bench (see in-process-module.ts): builds lpty for
// Lua 5.4 and copies mod_auth_external_insecure into a cache directory outside the repository.
import { cacheDir, setUpByDownload, setUpFrom } from './in-process-module.js';

const [option, value] = process.argv.slice(2);
try {
  const module = option === '--from' && value ? setUpFrom(value) : option === '--download' ? await setUpByDownload() : usage();
  process.stdout.write(`set up in ${cacheDir()} (${module.source}); npm run bench now measures the in-process module on Prosody\n`);
} catch (error) {
  process.stderr.write(`bench:setup failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

function usage(): never {
  process.stderr.write(
    'usage: npm run bench:setup -- --from DIR    (DIR holds lpty/lpty.c and prosody-modules/mod_auth_external_insecure/)\n' +
      '       npm run bench:setup -- --download    (fetches both from upstream)\n' +
      '  the result goes to EXTAUTH_BENCH_CACHE, else ~/.cache/extauth-component/bench\n',
  );
  process.exit(2);
}
