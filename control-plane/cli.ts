/**
 * shardgate-ctl — the control-plane CLI (CONTRACT.md §5). Exit 0 on success, 1 on a user error
 * (one line on stderr naming the command and the argument, option or key), 2 when etcd is
 * unreachable. The command tree is in ctl-program.ts, the exit-code contract in ctl-main.ts.
 */
import { main } from './ctl-main.js';

// A reader that stopped early (`shardgate-ctl tenants list | head -1`) is no error of ours: what
// was asked is done (a write may already have happened), so the exit code stays the command's.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

process.exitCode = await main(process.argv);
