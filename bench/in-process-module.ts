// Prosody's in-process external-auth module, `mod_auth_external_insecure` from prosody-modules,
// which runs the script on a pty through the `lpty` C module: the baseline the component is
// compared with on Prosody. Neither is ours to ship, so `npm run bench:setup` builds lpty for
// Lua 5.4 from its source and copies the module into a cache directory outside the repository;
// the bench runs the path when that cache is complete and says why it skipped it otherwise.
//
//   npm run bench:setup -- --from DIR     DIR holds lpty/ (its source, with lpty.c) and
//                                         prosody-modules/ (or mod_auth_external_insecure/ directly)
//   npm run bench:setup -- --download     the same, fetched from upstream (needs internet access)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const MODULE = 'mod_auth_external_insecure';
const LPTY_URL = 'https://github.com/LuaDist/lpty';
const MODULE_URL = `https://hg.prosody.im/prosody-modules/raw-file/tip/${MODULE}/${MODULE}.lua`;
const LUA_INCLUDE = '/usr/include/lua5.4';

/** Where the built lpty.so and the module live: EXTAUTH_BENCH_CACHE, else ~/.cache/extauth-component/bench. */
export function cacheDir(): string {
  return process.env.EXTAUTH_BENCH_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'extauth-component', 'bench');
}

export interface InProcessModule {
  /** Holds mod_auth_external_insecure.lua (a Prosody plugin path). */
  pluginDir: string;
  /** Holds lpty.so (for LUA_CPATH). */
  cpathDir: string;
  /** Where the sources came from, for the report. */
  source: string;
}

/** The set-up module, or why there is none (a sentence for the report). */
export function findInProcessModule(): InProcessModule | { missing: string } {
  const dir = cacheDir();
  if (!existsSync(join(dir, 'lpty.so')) || !existsSync(join(dir, `${MODULE}.lua`)))
    return { missing: `${MODULE} with lpty is not set up in ${dir} (run \`npm run bench:setup -- --from DIR\` or \`-- --download\`, see bench/README.md)` };
  const sourceFile = join(dir, 'source.txt');
  return { pluginDir: dir, cpathDir: dir, source: existsSync(sourceFile) ? readFileSync(sourceFile, 'utf8').trim() : 'unknown' };
}

/** Builds lpty.so and copies the module from a folder holding both sources into the cache. */
export function setUpFrom(from: string): InProcessModule {
  const root = resolve(from);
  const lptySource = [join(root, 'lpty', 'lpty.c'), join(root, 'lpty.c')].find(existsSync);
  if (!lptySource) throw new Error(`no lpty source in ${root}: expected ${join(root, 'lpty', 'lpty.c')}`);
  const moduleSource = [join(root, 'prosody-modules', MODULE, `${MODULE}.lua`), join(root, MODULE, `${MODULE}.lua`), join(root, `${MODULE}.lua`)].find(
    existsSync,
  );
  if (!moduleSource) throw new Error(`no ${MODULE}.lua in ${root}: expected ${join(root, 'prosody-modules', MODULE, `${MODULE}.lua`)}`);
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(LUA_INCLUDE, 'lua.h'))) throw new Error(`${LUA_INCLUDE}/lua.h is missing: install liblua5.4-dev`);
  const compiler = process.env.CC ?? 'gcc';
  execFileSync(compiler, ['-O2', '-shared', '-fPIC', `-I${LUA_INCLUDE}`, lptySource, '-o', join(dir, 'lpty.so'), '-lutil'], { stdio: 'inherit' });
  copyFileSync(moduleSource, join(dir, `${MODULE}.lua`));
  // DIR/SOURCES, when present, says where DIR's copies came from (repository and commit).
  const origin = existsSync(join(root, 'SOURCES'))
    ? ` (${readFileSync(join(root, 'SOURCES'), 'utf8')
        .trim()
        .replace(/\s*\n\s*/g, '; ')})`
    : '';
  writeFileSync(join(dir, 'source.txt'), `lpty from ${lptySource}, ${MODULE} from ${moduleSource}${origin}\n`);
  return { pluginDir: dir, cpathDir: dir, source: readFileSync(join(dir, 'source.txt'), 'utf8').trim() };
}

/** Fetches both sources from upstream (git and HTTPS), then sets up from them. */
export async function setUpByDownload(): Promise<InProcessModule> {
  const work = mkdtempSync(join(tmpdir(), 'extauth-bench-sources-'));
  try {
    execFileSync('git', ['clone', '--quiet', '--depth', '1', LPTY_URL, join(work, 'lpty')], { stdio: 'inherit' });
    const response = await fetch(MODULE_URL);
    if (!response.ok) throw new Error(`${MODULE_URL}: HTTP ${response.status}`);
    mkdirSync(join(work, MODULE));
    writeFileSync(join(work, MODULE, `${MODULE}.lua`), await response.text());
    const module = setUpFrom(work);
    writeFileSync(join(cacheDir(), 'source.txt'), `lpty from ${LPTY_URL} (HEAD), ${MODULE} from ${MODULE_URL}\n`);
    return { ...module, source: readFileSync(join(cacheDir(), 'source.txt'), 'utf8').trim() };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
