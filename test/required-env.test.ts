/**
 * CONTRACT.md §3: a missing or malformed required variable stops the process at start with one
 * clear line naming it. Checked on the API and the email worker, from source, with their
 * dependencies at a closed port (helpers/start-entry.ts): nothing of the local stack is touched.
 *
 * SHARDGATE_DB_PASSWORD must be set (it may be empty): unset, both processes used to start, the
 * API even reported ready, and every query then failed with the server's "access denied", which
 * clients saw as 503s from an open `mysql-master` breaker.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';

afterEach(stopStartedEntries);

const ENTRIES = [
  { name: 'API', entry: 'src/entry/node.ts', prefix: 'shardgate' },
  { name: 'email worker', entry: 'src/entry/email-worker.ts', prefix: 'shardgate worker' },
];

describe('required environment variables', () => {
  for (const { name, entry, prefix } of ENTRIES) {
    it(`the ${name} stops at start with one line when SHARDGATE_DB_PASSWORD is not set`, async () => {
      const p = startEntry(entry, { SHARDGATE_DB_PASSWORD: undefined });
      expect(await p.exited()).toBe(1);
      expect(p.stderr()).toMatch(
        new RegExp(
          `^${prefix}: missing required environment variable SHARDGATE_DB_PASSWORD \\(set it empty for a passwordless account[^\\n]*\\)\\n$`,
        ),
      );
    });
  }

  it('the API stops at start with one line when SHARDGATE_JWT_SECRET is not set', async () => {
    const api = startEntry('src/entry/node.ts', { SHARDGATE_JWT_SECRET: undefined });
    expect(await api.exited()).toBe(1);
    expect(api.stderr()).toBe('shardgate: missing required environment variable SHARDGATE_JWT_SECRET\n');
  });

  it('an empty SHARDGATE_DB_PASSWORD (a passwordless account) does not stop the worker', async () => {
    // with etcd at a closed port the worker keeps retrying its config: still running after 3 s
    const worker = startEntry('src/entry/email-worker.ts', { SHARDGATE_DB_PASSWORD: '' });
    const outcome = await Promise.race([
      worker.exited().then((code) => `exited ${code}: ${worker.stderr()}`),
      new Promise<string>((r) => setTimeout(() => r('running'), 3000)),
    ]);
    expect(outcome).toBe('running');
  });
});
