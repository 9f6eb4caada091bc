/**
 * What an instance logs of a config change (src/config/etcd-config-store.ts): each value cut to
 * LOGGED_VALUE_MAX characters, and a rejected key with its reason (not the value). An outside check put a
 * 1 MB tenant value (valid JSON, padded) and put it back: 4 MB more log on every process.
 * Reads the stack's api-1 log; its tenant keys are removed with single-key deletes.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_DIR } from '../stack/paths.js';
import { etcdDel, etcdPut } from './helpers/etcd.js';
import { uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const LOG = join(LOG_DIR, 'api-1.log');
const made: string[] = [];

afterAll(() => {
  for (const key of made) etcdDel(key);
});

/** the api-1 log lines written since `from` (a byte offset) that name `key` */
function linesOf(from: number, key: string): string[] {
  const text = readFileSync(LOG).subarray(from).toString('utf8');
  return text.split('\n').filter((line) => line.includes(`"key":"${key}"`));
}

describe('config change log lines', () => {
  it('cut a large value, and give a rejected key its reason, not its value', async () => {
    const tenant = uniqueTenantId('loglines');
    const key = `tenants/${tenant}`;
    made.push(key);
    const from = statSync(LOG).size;
    // 100,000 blanks inside a valid entry
    etcdPut(key, `{"shard":"shard-1",${' '.repeat(100_000)}"status":"active"}`);
    const changed = await waitFor(
      async () => linesOf(from, key).find((line) => line.includes('"msg":"config changed"')),
      { timeoutMs: 3000, what: 'api-1 to log the change' },
    );
    expect(changed.length).toBeLessThan(2000);
    expect(changed).toContain('… (100037 characters)');

    const before = statSync(LOG).size;
    etcdPut(key, '{"shard":"shard-1","status":"active","status":"suspended"}');
    const rejected = await waitFor(
      async () => linesOf(before, key).find((line) => line.includes('"msg":"config value rejected"')),
      { timeoutMs: 3000, what: 'api-1 to log the rejection' },
    );
    const line = JSON.parse(rejected) as { reason: string; value?: string };
    expect(line.reason).toMatch(/^status: given more than once/);
    // not the value: a rejected one may hold a secret put there by mistake
    expect(line.value).toBeUndefined();
  });

  it('log the cache epoch, moved in bursts during a Redis outage, once per 10 s (the moves between at debug)', {
    timeout: 20_000,
  }, async () => {
    const key = 'runtime/cache_epoch';
    // the last line logged for it (a move by an earlier test) opens the next 10 s window
    const last = linesOf(0, key)
      .filter((line) => line.includes('"msg":"config changed"'))
      .at(-1);
    const lastAt = last ? Date.parse((JSON.parse(last) as { time: string }).time) : 0;
    const wait = lastAt + 10_500 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const from = statSync(LOG).size;
    // before: one info line per move on every process (over 150 lines in 20 s, an outside check)
    for (let i = 0; i < 5; i++) {
      etcdPut(key, String(Date.now() * 1000 + i));
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor(async () => linesOf(from, key).some((line) => line.includes('"msg":"config changed"')), {
      timeoutMs: 3000,
      what: 'api-1 to log the first move',
    });
    await new Promise((r) => setTimeout(r, 500));
    const lines = linesOf(from, key).filter((line) => line.includes('"msg":"config changed"'));
    // the stack logs at info: the moves after the first within 10 s are at debug only
    expect(lines.length, lines.join('\n')).toBe(1);
    expect(lines[0]).toContain('"level":30');
  });
});
