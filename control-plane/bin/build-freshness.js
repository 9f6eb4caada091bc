// Plain JS (the launcher runs before any TypeScript loader): whether dist/ is older than the
// sources it is built from. The one copy of that rule: the launcher and the local stack's `up`
// (stack/build.ts, which builds when it holds) both call it. Fresh means `dist/src/entry/node.js`
// is newer than every non-test .ts under src/, control-plane/ and stack/ (tests are not built;
// a failed build back-dates that entry, so the next `up` builds again). A deleted source file
// alone does not make the build stale: nothing it left in dist/ is imported by a fresh file.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SOURCE_DIRS = ['src', 'control-plane', 'stack'];

/** true when `root`'s build (`dist/src/entry/node.js` and `also`) is missing or older than a source */
export function buildIsStale(root, also = []) {
  const entry = join(root, 'dist', 'src', 'entry', 'node.js');
  if (!existsSync(entry) || also.some((f) => !existsSync(f))) return true;
  const built = statSync(entry).mtimeMs;
  for (const dir of SOURCE_DIRS) {
    const base = join(root, dir);
    if (!existsSync(base)) continue;
    for (const e of readdirSync(base, { withFileTypes: true, recursive: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts') || e.name.endsWith('.test.ts')) continue;
      if (e.parentPath.includes('node_modules')) continue;
      if (statSync(join(e.parentPath, e.name)).mtimeMs > built) return true;
    }
  }
  return false;
}
