/**
 * shardgate-ctl — the control-plane CLI (CONTRACT.md §5). Exit 0 on success, 1 on a user error
 * (one line on stderr naming the command and the argument, option or key), 2 when etcd is
 * unreachable. The command tree is in ctl-program.ts, the exit-code contract in ctl-main.ts.
 */
import { main } from './ctl-main.js';

process.exitCode = await main(process.argv);
