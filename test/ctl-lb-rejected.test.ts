/**
 * One-shot `lb sync` and a weight key the schema rejects: the weight in force is the key's last
 * good value from etcd's history (as the instances and the --watch daemon keep it), and a key with
 * none is left alone, never taken for an absent key and given its haproxy.cfg weight.
 *
 * Runs under a prefix of its own (`/ct-lbrej-<hex>/`, outside /shardgate/) against a stand-in for
 * HAProxy's runtime socket: the stack's HAProxy and its keys are not touched. Each key made is
 * removed with a single-key delete at the end. The CLI runs with ctlAsync: the stand-in answers
 * from this process.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ctlAsync } from './helpers/ctl.js';
import { etcdDelKey, etcdGetKey, etcdPutKey } from './helpers/etcd.js';

const prefix = `/ct-lbrej-${randomBytes(3).toString('hex')}/`;
const env = { SHARDGATE_ETCD_PREFIX: prefix };
const made = new Set<string>();
const servers: Server[] = [];
afterAll(() => {
  for (const key of made) if (etcdGetKey(key) !== undefined) etcdDelKey(key);
  for (const s of servers) s.close();
});
function put(key: string, value: string): void {
  made.add(`${prefix}${key}`);
  etcdPutKey(`${prefix}${key}`, value);
}

interface FakeServer {
  name: string;
  /** srv_uweight, the live weight */
  weight: number;
  /** srv_iweight, haproxy.cfg's */
  initial: number;
}

/** backend `api` of HAProxy's runtime API: `show servers state api` and `set server api/<s> weight N` */
async function fakeHaproxy(list: FakeServer[]): Promise<{ socketPath: string; commands: string[] }> {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'sg-lbrej-')), 'sock');
  const commands: string[] = [];
  const server = createServer((sock) => {
    sock.setEncoding('utf8');
    sock.once('data', (line: string) => {
      const command = line.trim();
      commands.push(command);
      const set = /^set server api\/(\S+) weight (\d+)$/.exec(command);
      if (command === 'show servers state api') {
        sock.end(
          `1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change\n${list
            .map((s, i) => `4 api ${i + 1} ${s.name} 127.0.0.1 2 0 ${s.weight} ${s.initial} 7\n`)
            .join('')}\n`,
        );
      } else if (set) {
        const target = list.find((s) => s.name === set[1]);
        if (target) target.weight = Number(set[2]);
        sock.end(target ? '\n' : 'No such server.\n\n');
      } else sock.end('\n');
    });
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(socketPath, done));
  return { socketPath, commands };
}

describe('one-shot lb sync: a rejected weight key', () => {
  it('applies the last good value, as the instances keep it, not the haproxy.cfg weight', async () => {
    put('lb/weights/api-2', '7');
    put('lb/weights/api-2', 'abc');
    const list = [
      { name: 'api-1', weight: 10, initial: 10 },
      { name: 'api-2', weight: 3, initial: 10 },
    ];
    const fake = await fakeHaproxy(list);
    const r = await ctlAsync(['lb', 'sync', '--socket', fake.socketPath], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('applied: set server api/api-2 weight 7\n');
    expect(r.stdout).not.toContain('no lb/weights/api-2');
    expect(list[1]!.weight).toBe(7);
    expect(r.stderr).toMatch(
      new RegExp(
        `^shardgate-ctl: lb sync: warning: ${prefix}lb/weights/api-2 is rejected \\([^\\n]*\\); its last good value 7 \\(revision \\d+\\) applies, as the instances keep it\\n$`,
      ),
    );
    // HAProxy already at it: nothing sent
    const again = await ctlAsync(['lb', 'sync', '--socket', fake.socketPath], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /^haproxy already matches etcd \(1 weight\(s\) applied; 1 server\(s\) without/,
    );
  });

  it('leaves a server alone whose key never held a valid weight, and never says it has no key', async () => {
    // api-2's key still holds the test above's rejected value, its last good value 7 in force
    put('lb/weights/api-1', 'abc');
    const list = [
      { name: 'api-1', weight: 4, initial: 10 },
      { name: 'api-2', weight: 7, initial: 10 },
    ];
    const fake = await fakeHaproxy(list);
    const r = await ctlAsync(['lb', 'sync', '--socket', fake.socketPath], env);
    expect(r.code, r.stderr).toBe(0);
    expect(fake.commands.filter((c) => c.startsWith('set server api/api-1'))).toEqual([]);
    expect(list[0]!.weight).toBe(4);
    expect(r.stdout).not.toContain('no lb/weights/api-1');
    expect(r.stdout).toMatch(
      /^haproxy already matches etcd \(1 weight\(s\) applied; 1 server\(s\) with a rejected weight left as they are\)\n$/,
    );
    expect(r.stderr).toContain(`${prefix}lb/weights/api-1 is rejected (`);
    expect(r.stderr).toContain(
      "no last good value in etcd's history: server api-1 left at the weight it has",
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  });
});
