// `npm run build`: compiles into a staging folder of its own (.build-next-XXXXXX, tsc -p
// tsconfig.build.json), writes its build-info.json (write-build-info.mjs), and only then puts it
// in place of dist/ by two renames. Before, tsc rewrote dist/ file by file for some 20 s, and a
// process started meanwhile (an instance restarted by `npm run stack -- up`) could load half of
// the old build and half of the new, or a module half written, and crash (an outside check).
// Failure modes: a failed build leaves dist/ as it was (tsc's report, exit code kept) and removes
// its staging folder; two builds at once each stage in a folder of their own (a shared one let the
// second delete what the first had emitted, and the first put an incomplete dist/ in place, a
// review), the last to finish wins; a process started in the microseconds between the two renames
// finds no dist/ and exits, as before the first build. A process already running keeps the
// modules it loaded; one it imports later comes from the new build, as before.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const next = mkdtempSync(join(root, '.build-next-'));

const tsc = spawnSync(
  process.execPath,
  [
    createRequire(import.meta.url).resolve('typescript/bin/tsc'),
    '-p',
    'tsconfig.build.json',
    '--outDir',
    next,
  ],
  { cwd: root, stdio: 'inherit' },
);
const info =
  tsc.status === 0
    ? spawnSync(process.execPath, [join(root, 'scripts', 'write-build-info.mjs'), next], {
        cwd: root,
        stdio: 'inherit',
      })
    : undefined;
if (tsc.status !== 0 || info?.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  process.exit(tsc.status || info?.status || 1);
}
// the build before goes aside under a name of this build's own, then away
const old = next.replace('.build-next-', '.build-old-');
try {
  renameSync(dist, old);
} catch (error) {
  // none yet, or another build's swap took it aside this instant
  if (error.code !== 'ENOENT') throw error;
}
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
// what a build killed between its renames left aside (its dist/ was put back by this one)
for (const name of readdirSync(root))
  if (name.startsWith('.build-old-')) rmSync(join(root, name), { recursive: true, force: true });
