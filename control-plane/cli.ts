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

const code = await main(process.argv);
// The command is done: its output is written and every call it made was awaited. What could keep
// the process alive now is a library's timer, not work of the command: etcd3 1.1.2's lease
// re-arms its 10 s keep-alive timeout when a keep-alive answer arrives after the lease was revoked
// (lease.js: the stream's 'data' handler outlives the teardown), so a `tenants move` that had
// already printed its last line exited up to 10 s later, in about 1 run of 18 (seen in CI: exit
// 13.2 s after the fault, its error line at 3.2 s). Exit once stdout and stderr have taken the
// output.
process.exitCode = code;
await Promise.all([process.stdout, process.stderr].map((s) => new Promise((r) => s.write('', r))));
process.exit(code);
