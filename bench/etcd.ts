/** The few etcd operations the bench needs, with plain `etcdctl` as an operator would. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { topology } from '../stack/topology.js';

const run = promisify(execFile);
const ENDPOINT = `http://${topology.host}:${topology.etcd.port}`;

/** etcdctl, tried up to 3 times: a busy 2-core box can make one call miss its deadline */
async function etcdctl(args: string[]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await run('etcdctl', [`--endpoints=${ENDPOINT}`, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
      return stdout;
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

export async function etcdGet(key: string): Promise<string | undefined> {
  const out = await etcdctl(['get', `${topology.etcd.prefix}${key}`, '--print-value-only']);
  return out === '' ? undefined : out.replace(/\n$/, '');
}

export async function etcdPut(key: string, value: string): Promise<void> {
  await etcdctl(['put', `${topology.etcd.prefix}${key}`, value]);
}

export async function etcdDel(key: string, { prefix = false } = {}): Promise<void> {
  await etcdctl(['del', `${topology.etcd.prefix}${key}`, ...(prefix ? ['--prefix'] : [])]);
}

/**
 * Remember the values of `keys` now; the returned function puts them back (deleting those that
 * were absent). For the live switches a bench run flips.
 */
export async function remember(keys: readonly string[]): Promise<() => Promise<void>> {
  const before = await Promise.all(keys.map((k) => etcdGet(k)));
  return async () => {
    for (const [i, key] of keys.entries()) {
      const value = before[i];
      await (value === undefined ? etcdDel(key) : etcdPut(key, value));
    }
  };
}
