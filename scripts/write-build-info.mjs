// Writes build-info.json into dist/, or the folder given, after `tsc` (scripts/build.mjs): the
// package version and the commit the build was made from, which every API instance registers
// (instances/<id> `build`), `shardgate-ctl status` lists and /metrics exports
// (shardgate_build_info), so a rolling deploy shows which instance runs what. The commit:
// SHARDGATE_BUILD_COMMIT when set (a Docker build has no .git:
// `--build-arg SHARDGATE_BUILD_COMMIT=$(git rev-parse --short=12 HEAD)`), else `git rev-parse` of
// this checkout (with `-dirty` when tracked files have uncommitted changes), else `unknown`.
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const git = (...args) =>
  execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();

function commit() {
  // given: it wins (a checkout unpacked inside another repository would read that one's HEAD)
  const given = (process.env.SHARDGATE_BUILD_COMMIT ?? '').trim();
  if (given !== '') return /^[0-9A-Za-z._-]{1,40}$/.test(given) ? given : 'unknown';
  try {
    // this repository's own .git only
    if (realpathSync(git('rev-parse', '--show-toplevel')) !== realpathSync(root)) return 'unknown';
    const sha = git('rev-parse', '--short=12', 'HEAD');
    // --no-optional-locks: no index.lock taken (a git command running beside the build)
    const dirty = git('--no-optional-locks', 'status', '--porcelain', '--untracked-files=no') !== '';
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
// into the build's folder: dist/ unless given (scripts/build.mjs writes its staging folder)
const out = process.argv[2] ?? join(root, 'dist');
writeFileSync(join(out, 'build-info.json'), `${JSON.stringify({ version, commit: commit() })}\n`);
