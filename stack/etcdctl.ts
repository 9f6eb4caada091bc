/**
 * `etcdctl` (API v3) against the local stack's etcd (stack/etcd.ts `etcdClientUrl`), as an
 * operator runs it: how the integration tests and the bench change the live config. Keys are
 * full keys here; callers add `topology.etcd.prefix`.
 *
 * Failure: a non-zero exit, or no exit within `timeoutMs` (etcdctl then gets SIGTERM), throws an
 * Error naming the arguments and etcdctl's stderr. Nothing is retried here.
 */
import { execFile, spawnSync } from 'node:child_process';
import { etcdClientUrl } from './etcd.js';
import { binary } from './preflight.js';

export interface EtcdctlOptions {
  /** etcdctl's own --command-timeout is 5 s; this bounds the whole process, dial included */
  timeoutMs?: number;
}

const argv = (args: readonly string[]) => [`--endpoints=${etcdClientUrl}`, ...args];
const env = () => ({ ...process.env, ETCDCTL_API: '3' });
const failure = (args: readonly string[], detail: unknown) =>
  new Error(`etcdctl ${args.join(' ')}: ${String(detail).trim()}`);

/** `etcdctl …args`, blocking; its stdout. */
export function etcdctlSync(args: readonly string[], { timeoutMs = 15_000 }: EtcdctlOptions = {}): string {
  const r = spawnSync(binary('etcdctl'), argv(args), { encoding: 'utf8', env: env(), timeout: timeoutMs });
  if (r.status !== 0) throw failure(args, r.stderr || r.error || `killed by ${r.signal}`);
  return r.stdout;
}

/** `etcdctl …args` without blocking the event loop; its stdout. */
export function etcdctl(
  args: readonly string[],
  { timeoutMs = 15_000 }: EtcdctlOptions = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      binary('etcdctl'),
      argv(args),
      { encoding: 'utf8', env: env(), timeout: timeoutMs },
      (error, stdout, stderr) => (error ? reject(failure(args, stderr || error.message)) : resolve(stdout)),
    );
  });
}

/** `put`'s arguments: `--` ends the options, so a value like `-1` is not taken for a flag. */
export const putArgs = (fullKey: string, value: string): string[] => ['put', '--', fullKey, value];

/** `get`'s arguments for the value alone; read its output with `printedValue`. */
export const getArgs = (fullKey: string): string[] => ['get', fullKey, '--print-value-only'];

/**
 * The value in the output of a `getArgs` call: undefined when the key is absent (etcdctl prints
 * nothing), '' for an empty value (it prints an empty line).
 */
export function printedValue(stdout: string): string | undefined {
  return stdout === '' ? undefined : stdout.replace(/\n$/, '');
}
