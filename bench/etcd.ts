/** The few etcd operations the bench needs, with plain `etcdctl` as an operator would. */
import { etcdctl, getArgs, printedValue, putArgs } from '../stack/etcdctl.js';
import { topology } from '../stack/topology.js';

const PREFIX = topology.etcd.prefix;

/** etcdctl, tried up to 3 times: a busy 2-core box can make one call miss its deadline */
async function retried(args: string[]): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await etcdctl(args);
    } catch (error) {
      if (attempt >= 3) throw error;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
}

export async function etcdGet(key: string): Promise<string | undefined> {
  return printedValue(await retried(getArgs(`${PREFIX}${key}`)));
}

export async function etcdPut(key: string, value: string): Promise<void> {
  await retried(putArgs(`${PREFIX}${key}`, value));
}

export async function etcdDel(key: string, { prefix = false } = {}): Promise<void> {
  await retried(['del', `${PREFIX}${key}`, ...(prefix ? ['--prefix'] : [])]);
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
