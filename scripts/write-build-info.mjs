// Writes dist/build-info.json after `tsc` (npm run build): the package version and the commit the
// build was made from, which every API instance registers (instances/<id> `build`), `shardgate-ctl
// status` lists and /metrics exports (shardgate_build_info), so a rolling deploy shows which
// instance runs what. The commit: `git rev-parse` of the checkout (with `-dirty` when it has
// uncommitted changes to tracked files), else SHARDGATE_BUILD_COMMIT (a Docker build has no .git:
// `--build-arg SHARDGATE_BUILD_COMMIT=$(git rev-parse --short=12 HEAD)`), else `unknown`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const git = (...args) =>
  execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

function commit() {
  try {
    const sha = git('rev-parse', '--short=12', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no') !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    const given = (process.env.SHARDGATE_BUILD_COMMIT ?? '').trim();
    return /^[0-9A-Za-z._-]{1,64}$/.test(given) ? given : 'unknown';
  }
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
writeFileSync(join(root, 'dist', 'build-info.json'), `${JSON.stringify({ version, commit: commit() })}\n`);
