/**
 * `shardgate-ctl lb weight` and `lb sync` against the real etcd and HAProxy of the local stack: an
 * unknown backend is a user error, a weighted instance without a server in the backend is named
 * (with --watch once per change of that set, not every tick), and a weight for an instance that
 * is not registered is written with a warning.
 *
 * Every weight made here is for an instance id starting with `ct-` (no HAProxy server has one);
 * each key is removed with a single-key delete at the end. Except in "a deleted lb/weights key",
 * which drives the real server api-2: a deleted key puts it back to its configured weight (the one
 * in haproxy.cfg), out of a weight-0 drain, both with `lb sync` and with `--watch` (and with the
 * stack's daemon stopped, by the instance's agent-check), and a drain or maintenance set by hand
 * is never undone, by the sync nor by the agent-check. That block puts `lb/weights/api-2` back as it found it
 * (one put, or one single-key delete), its agent-check back on, its state ready and its weight back.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { haproxyCommand } from '../control-plane/lb/haproxy-runtime.js';
import { READY_MS } from '../src/entry/agent-check-server.js';
import { HAPROXY_SOCKET, STATE_DIR } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { HAPROXY } from './helpers/api.js';
import { ctl, ctlAsync } from './helpers/ctl.js';
import { etcdDel, etcdDelKey, etcdGet, etcdGetKey, etcdPut, etcdPutKey } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const ONE_LINE = /^shardgate-ctl: [^\n]+ \(see shardgate-ctl [^\n]*--help\)\n$/;
const BIN = fileURLToPath(new URL('../control-plane/bin/shardgate-ctl.js', import.meta.url));
const unique = (label: string) => `ct-${label}-${randomBytes(4).toString('hex')}`;

const created = new Set<string>();
afterAll(() => {
  for (const key of created) if (etcdGet(key) !== undefined) etcdDel(key);
});
function put(key: string, value: string): void {
  created.add(key);
  etcdPut(key, value);
}

describe('shardgate-ctl lb sync', () => {
  it('a backend HAProxy does not have is a user error, not "already matches"', () => {
    const r = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET, '--backend', 'ct-bogus']);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(`lb sync: haproxy at ${HAPROXY_SOCKET} has no backend ct-bogus (--backend)`);
    expect(r.code).toBe(1);
  });

  it('--watch with such a backend exits 1 too, once it reaches HAProxy, instead of running on', () => {
    const r = ctl(['lb', 'sync', '--watch', '--socket', HAPROXY_SOCKET, '--backend', 'ct-bogus']);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain('has no backend ct-bogus (--backend)');
    expect(r.code).toBe(1);
  });

  it('names a weighted instance that has no server in the backend', () => {
    const id = unique('noserver');
    put(`lb/weights/${id}`, '2');
    const r = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `^shardgate-ctl: lb sync: warning: no server in haproxy backend ${topology.haproxy.backend} for [^\\n]*lb/weights/${id}[,;][^\\n]*not applied\\n$`,
      ),
    );
  });

  it('--watch names those instances once per change of that set, not every tick', async () => {
    const first = unique('watch');
    put(`lb/weights/${first}`, '1');
    const child = spawn(
      process.execPath,
      [BIN, 'lb', 'sync', '--watch', '--interval-ms', '100', '--socket', HAPROXY_SOCKET],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output += String(d);
    });
    child.stderr.on('data', (d) => {
      output += String(d);
    });
    const warnings = () => output.split('\n').filter((l) => l.includes('no server in haproxy backend'));
    try {
      await waitFor(() => warnings().length > 0, { timeoutMs: 10_000, what: 'the first warning' });
      expect(warnings()[0]).toContain(first);
      // twenty ticks and a weight change that leaves the set as it is: no new warning
      await new Promise((r) => setTimeout(r, 1000));
      put(`lb/weights/${first}`, '3');
      await new Promise((r) => setTimeout(r, 1000));
      expect(warnings(), output).toHaveLength(1);
      // the set changes: one more
      const second = unique('watch');
      put(`lb/weights/${second}`, '1');
      await waitFor(() => warnings().length > 1, { timeoutMs: 5000, what: 'the second warning' });
      await new Promise((r) => setTimeout(r, 1000));
      expect(warnings(), output).toHaveLength(2);
      expect(warnings()[1]).toContain(second);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, output).toBe(0);
  });
});

describe('shardgate-ctl lb weight', () => {
  it('writes the weight of an instance that is not registered, warning on stderr', () => {
    const id = unique('unregistered');
    created.add(`lb/weights/${id}`);
    const r = ctl(['lb', 'weight', id, '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `shardgate-ctl: lb weight: warning: instance ${id} is not registered now (no /shardgate/instances/${id}); HAProxy applies the weight to its server of that name (lb sync), if its backend has one: a typo of the id never applies\n`,
    );
    expect(etcdGet(`lb/weights/${id}`)).toBe('2');

    // a registered instance: no warning (its weight as it is, so nothing changes)
    const api1 = topology.apis[0]!.id;
    const same = ctl(['lb', 'weight', api1, etcdGet(`lb/weights/${api1}`) ?? '1']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toBe('');
  });

  it('writes a whole number as the number it is, and refuses anything else in one line', () => {
    const id = unique('typed');
    created.add(`lb/weights/${id}`);
    expect(ctl(['lb', 'weight', id, '7']).code).toBe(0);
    expect(etcdGet(`lb/weights/${id}`)).toBe('7');
    for (const bad of ['007', '1.0', '-0', '1e2', '257', '9'.repeat(1000)]) {
      const r = ctl(['lb', 'weight', id, bad]);
      expect(r.code, bad.slice(0, 20)).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain('is not a whole number 0–256');
    }
    expect(etcdGet(`lb/weights/${id}`)).toBe('7');
  });

  it('weight 0 for the last registered instance with a weight above 0 is refused, unless --force', () => {
    const [api1, api2] = [topology.apis[0]!.id, topology.apis[1]!.id];
    const keys = [`lb/weights/${api1}`, `lb/weights/${api2}`];
    const saved = keys.map((k) => etcdGet(k));
    try {
      etcdPut(keys[1]!, '0');
      const r = ctl(['lb', 'weight', api1, '0']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain(`${api1} is the last registered instance with a weight above 0`);
      expect(etcdGet(keys[0]!)).toBe(saved[0]);
      // the other one back above 0: allowed
      etcdPut(keys[1]!, '1');
      expect(ctl(['lb', 'weight', api1, '0']).code).toBe(0);
      etcdPut(keys[0]!, saved[0] ?? '1');
      // --force drains them all
      etcdPut(keys[1]!, '0');
      const forced = ctl(['lb', 'weight', api1, '0', '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(etcdGet(keys[0]!)).toBe('0');
    } finally {
      keys.forEach((k, i) => {
        const v = saved[i];
        if (v === undefined) etcdGet(k) !== undefined && etcdDel(k);
        else etcdPut(k, v);
      });
    }
  });

  it('weight 0 that leaves only instances not answering ready is refused, lb weight and config apply alike, unless --force', async () => {
    // (ctlAsync: this process's servers must answer while the CLI runs)
    // an outside check: api-1 drained 0.3 s after SIGTERM to api-2 (draining, /health/ready 503);
    // 24 of 60 requests through HAProxy were answered 503 in the next 3.4 s. Two instances of a
    // prefix of its own, each a server of this test answering /health/ready as told
    const prefix = `/ct-ready-${randomBytes(4).toString('hex')}/`;
    const env = { SHARDGATE_ETCD_PREFIX: prefix };
    const ready = new Map<string, boolean>();
    const servers = await Promise.all(
      ['x1', 'x2'].map(
        (id) =>
          new Promise<{ id: string; server: Server; url: string }>((resolve) => {
            const server = createServer((_req, res) => {
              res.statusCode = ready.get(id) ? 200 : 503;
              res.end();
            });
            server.listen(0, '127.0.0.1', () =>
              resolve({ id, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
            );
          }),
      ),
    );
    const keys: string[] = [];
    try {
      for (const { id, url } of servers) {
        keys.push(`${prefix}instances/${id}`);
        etcdPutKey(
          `${prefix}instances/${id}`,
          JSON.stringify({ url, configRevision: 0, startedAt: new Date().toISOString() }),
        );
      }
      keys.push(`${prefix}lb/weights/x1`, `${prefix}lb/weights/x2`);
      ready.set('x1', true).set('x2', false);
      const refused = await ctlAsync(['lb', 'weight', 'x1', '0'], env);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toMatch(ONE_LINE);
      expect(refused.stderr).toContain(
        'weight 0 for x1 leaves HAProxy no server that serves: no other instance with a weight above 0 answers ready now (x2: not ready)',
      );
      expect(etcdGetKey(`${prefix}lb/weights/x1`)).toBeUndefined();
      // a file that drains it is refused alike, in a dry run too
      const file = join(mkdtempSync(join(tmpdir(), 'ct-ready-')), 'weights.yaml');
      writeFileSync(file, 'lb:\n  weights:\n    x1: 0\n');
      const apply = await ctlAsync(['config', 'apply', '-f', file, '--dry-run'], env);
      expect(apply.code, apply.stderr).toBe(1);
      expect(apply.stderr).toContain('answers ready now (x2: not ready)');
      // the other one ready: allowed
      ready.set('x2', true);
      const allowed = await ctlAsync(['lb', 'weight', 'x1', '0'], env);
      expect(allowed.code, allowed.stderr).toBe(0);
      expect(etcdGetKey(`${prefix}lb/weights/x1`)).toBe('0');
      etcdDelKey(`${prefix}lb/weights/x1`);
      // --force drains all the same
      ready.set('x2', false);
      const forced = await ctlAsync(['lb', 'weight', 'x1', '0', '--force'], env);
      expect(forced.code, forced.stderr).toBe(0);
      expect(etcdGetKey(`${prefix}lb/weights/x1`)).toBe('0');
      etcdDelKey(`${prefix}lb/weights/x1`);
      // one that does not answer at all may be down, or only unreachable from this host (an
      // instance registers 127.0.0.1 when it listens on every address): written, with a warning
      servers[1]!.server.close();
      etcdPutKey(
        `${prefix}instances/x2`,
        JSON.stringify({ url: 'http://127.0.0.1:1', configRevision: 0, startedAt: new Date().toISOString() }),
      );
      const gone = await ctlAsync(['lb', 'weight', 'x1', '0'], env);
      expect(gone.code, gone.stderr).toBe(0);
      expect(gone.stderr).toBe(
        'shardgate-ctl: lb weight: warning: weight 0 for x1: no other instance with a weight above 0 answered /health/ready from here (x2: not answering); if none of them serves, HAProxy answers every request 503\n',
      );
      expect(etcdGetKey(`${prefix}lb/weights/x1`)).toBe('0');
    } finally {
      for (const key of keys) etcdDelKey(key);
      for (const { server } of servers) server.close();
    }
  });

  it('config apply of weights that drain every registered instance is refused as lb weight refuses it, unless --force', () => {
    // an outside check: a file with every weight at 0 was applied (HAProxy answered every request 503)
    const [api1, api2] = [topology.apis[0]!.id, topology.apis[1]!.id];
    const keys = [`lb/weights/${api1}`, `lb/weights/${api2}`];
    const saved = keys.map((k) => etcdGet(k));
    const file = join(mkdtempSync(join(tmpdir(), 'ct-drain-')), 'weights.yaml');
    writeFileSync(file, `lb:\n  weights:\n    ${api1}: 0\n    ${api2}: 0\n`);
    try {
      for (const args of [['--dry-run'], []]) {
        const r = ctl(['config', 'apply', '-f', file, ...args]);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toMatch(ONE_LINE);
        expect(r.stderr).toContain('leaves no registered instance');
        expect(r.stderr).toContain('HAProxy would answer every request 503');
        expect(keys.map((k) => etcdGet(k))).toEqual(saved);
      }
      // one instance left above 0: no refusal (a dry run, so nothing is drained)
      writeFileSync(file, `lb:\n  weights:\n    ${api1}: 0\n`);
      const one = ctl(['config', 'apply', '-f', file, '--dry-run']);
      expect(one.code, one.stderr).toBe(0);
      // --force lifts the check
      writeFileSync(file, `lb:\n  weights:\n    ${api1}: 0\n    ${api2}: 0\n`);
      const forced = ctl(['config', 'apply', '-f', file, '--dry-run', '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(forced.stdout).toContain('dry run: 2 change(s) not applied');
    } finally {
      keys.forEach((k, i) => {
        const v = saved[i];
        if (v === undefined) etcdGet(k) !== undefined && etcdDel(k);
        else if (etcdGet(k) !== v) etcdPut(k, v);
      });
    }
  });

  it('lb weights lists every weight in force; lb unset deletes one, a second unset is no error', () => {
    const ghost = unique('ghost');
    const bad = unique('bad');
    put(`lb/weights/${ghost}`, '3');
    put(`lb/weights/${bad}`, '300');
    const rows = JSON.parse(ctl(['lb', 'weights', '--json']).stdout) as Record<string, unknown>[];
    const api1 = topology.apis[0]!.id;
    expect(rows.find((r) => r.id === api1)).toMatchObject({ registered: true });
    expect(rows.find((r) => r.id === ghost)).toEqual({ id: ghost, weight: 3, registered: false });
    // a rejected key with no good value: listed with its problem, no weight in force
    expect(rows.find((r) => r.id === bad)).toEqual({
      id: bad,
      weight: null,
      registered: false,
      problem: expect.stringMatching(/^must be a whole number from 0 to 256/),
      value: '300',
    });
    const text = ctl(['lb', 'weights']).stdout.split('\n');
    expect(text.find((l) => l.startsWith(`${ghost} `))).toMatch(/^\S+ +3 +not registered$/);
    expect(text.find((l) => l.startsWith(`${bad} `))).toMatch(
      / \? +not registered +problem: must be a whole number/,
    );

    // an id with no registration is named so: it may be a typo with no server in HAProxy
    const notRegistered = `shardgate-ctl: lb unset: warning: instance ${ghost} is not registered now (no /shardgate/instances/${ghost}); lb sync gives its server of that name the haproxy.cfg weight, if its backend has one: for a typo of the id no server changes\n`;
    const r = ctl(['lb', 'unset', ghost]);
    expect([r.code, r.stderr]).toEqual([0, notRegistered]);
    expect(r.stdout).toMatch(
      new RegExp(
        `^- lb/weights/${ghost} \\(was 3\\)\nlb sync gives ${ghost}'s server its haproxy.cfg weight now\nrevision \\d+\n$`,
      ),
    );
    expect(etcdGet(`lb/weights/${ghost}`)).toBeUndefined();
    const again = ctl(['lb', 'unset', ghost]);
    expect([again.code, again.stderr]).toEqual([0, notRegistered]);
    // a registered one: no warning
    const api1Weight = etcdGet(`lb/weights/${api1}`);
    const unsetRegistered = ctl(['lb', 'unset', api1]);
    if (api1Weight !== undefined) etcdPut(`lb/weights/${api1}`, api1Weight);
    expect([unsetRegistered.code, unsetRegistered.stderr]).toEqual([0, '']);
    expect(again.stdout).toContain('is not set; nothing written');
  });
});

describe('shardgate-ctl lb sync: a deleted lb/weights key', () => {
  const api2 = topology.apis[1]!;
  const key = `lb/weights/${api2.id}`;
  const backend = topology.haproxy.backend;
  const server = `${backend}/${api2.id}`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const savedKey = etcdGet(key);
  let agentDisabled = false;
  let stateSetByHand = false;
  let watcher: ReturnType<typeof spawn> | undefined;

  /** api-2's row of `show servers state`, parsed here (not by the code under test) */
  async function row(): Promise<{ admin: number; uweight: number; iweight: number }> {
    const text = await haproxyCommand(HAPROXY_SOCKET, `show servers state ${backend}`);
    const f = text
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((f) => f[1] === backend && f[3] === api2.id);
    if (!f) throw new Error(`no server ${server} in:\n${text}`);
    return { admin: Number(f[6]), uweight: Number(f[7]), iweight: Number(f[8]) };
  }
  const FMAINT = 0x01;
  const FDRAIN = 0x08;
  const runtime = async (command: string) => {
    const answer = (await haproxyCommand(HAPROXY_SOCKET, command)).trim();
    expect(answer, command).toBe('');
  };
  const deleteKey = () => {
    if (etcdGet(key) !== undefined) etcdDel(key);
  };

  /** `lb sync --watch` from this checkout's source, for the daemon's part */
  async function startWatch(): Promise<() => string> {
    let output = '';
    const child = spawn(
      process.execPath,
      [BIN, 'lb', 'sync', '--watch', '--interval-ms', '100', '--socket', HAPROXY_SOCKET],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.on('data', (d) => {
      output += String(d);
    });
    child.stderr.on('data', (d) => {
      output += String(d);
    });
    watcher = child;
    await waitFor(() => output.includes('lb sync watching'), {
      timeoutMs: 10_000,
      what: 'lb sync --watch up',
    });
    await sleep(500);
    // its own lines, not the config store's JSON log
    return () =>
      output
        .split('\n')
        .filter((l) => !l.startsWith('{'))
        .join('\n');
  }
  async function stopWatch(): Promise<void> {
    const child = watcher;
    watcher = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  afterAll(async () => {
    await stopWatch();
    if (agentDisabled) await haproxyCommand(HAPROXY_SOCKET, `enable agent ${server}`);
    if (stateSetByHand) await haproxyCommand(HAPROXY_SOCKET, `set server ${server} state ready`);
    if (savedKey === undefined) deleteKey();
    else etcdPut(key, savedKey);
    await haproxyCommand(HAPROXY_SOCKET, `set server ${server} weight ${savedKey ?? api2.weight}`);
    await waitFor(
      async () => (await row()).uweight === Number(savedKey ?? api2.weight) && (await row()).admin === 0,
      {
        timeoutMs: 5000,
        what: `${server} back to weight ${savedKey ?? api2.weight}, ready`,
      },
    );
  });

  it('--watch: a deleted key puts the server back to its configured weight (srv_iweight)', async () => {
    expect((await row()).iweight).toBe(api2.weight);
    const output = await startWatch();
    try {
      etcdPut(key, '4');
      await waitFor(async () => (await row()).uweight === 4, { timeoutMs: 5000, what: 'weight 4 applied' });
      etcdDel(key);
      await waitFor(async () => (await row()).uweight === api2.weight, {
        timeoutMs: 5000,
        what: `weight ${api2.weight} (haproxy.cfg) after the delete; output:\n${output()}`,
      });
    } finally {
      await stopWatch();
    }
  });

  it('--watch: weight 0 then a deleted key: out of the drain, at the configured weight, not the one before', async () => {
    const output = await startWatch();
    try {
      etcdPut(key, '3');
      await waitFor(async () => (await row()).uweight === 3, { timeoutMs: 5000, what: 'weight 3 applied' });
      etcdPut(key, '0');
      await waitFor(
        async () => {
          const r = await row();
          return r.uweight === 0 || (r.admin & FDRAIN) !== 0;
        },
        { timeoutMs: 5000, what: 'drained by weight 0' },
      );
      etcdDel(key);
      await waitFor(
        async () => {
          const r = await row();
          return r.uweight === api2.weight && r.admin === 0;
        },
        { timeoutMs: 5000, what: `ready at weight ${api2.weight} after the delete; output:\n${output()}` },
      );
    } finally {
      await stopWatch();
    }
  });

  it("--watch: a change of another instance's key leaves this server's weight as its agent set it", async () => {
    // an outside check: api-2's agent had lowered it to 1, a put of lb/weights/api-1 made it 10 again
    const output = await startWatch();
    const other = unique('other');
    try {
      await runtime(`disable agent ${server}`);
      agentDisabled = true;
      await runtime(`set server ${server} weight 5`); // as the agent lowers it on a lagging loop
      put(`lb/weights/${other}`, '3');
      // the watcher took the change: it names the key, which has no server in the backend
      await waitFor(() => output().includes(`lb/weights/${other}`), {
        timeoutMs: 5000,
        what: `the watcher's line about lb/weights/${other}; output:\n${output()}`,
      });
      await sleep(500);
      expect((await row()).uweight).toBe(5);
    } finally {
      await stopWatch();
      await runtime(`enable agent ${server}`);
      agentDisabled = false;
      etcdDel(`lb/weights/${other}`);
      created.delete(`lb/weights/${other}`);
    }
  });

  it('one-shot lb sync: a server without a key goes back to its configured weight', async () => {
    if (etcdGet(key) !== undefined) {
      etcdDel(key);
      await sleep(1500); // let the stack's own daemon act on the delete before the hand-made weight
    }
    // the sync's part alone: the agent, which reports the configured weight too, off for this test
    await runtime(`disable agent ${server}`);
    agentDisabled = true;
    // what a delete left behind when no daemon ran
    await runtime(`set server ${server} weight 4`);
    const r = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`applied: set server ${server} weight ${api2.weight}`);
    expect(r.stdout).not.toContain('already matches');
    expect((await row()).uweight).toBe(api2.weight);
    // once there: nothing more to do
    const again = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^haproxy already matches etcd/);
    await runtime(`enable agent ${server}`);
    agentDisabled = false;
  });

  it("the instance's agent-check keeps a maintenance or drain set by hand, and applies a deleted key without the sync daemon", async () => {
    // past the first replies after the instance's start, the only ones that say `ready` (they
    // end the drain its predecessor set as it shut down)
    await waitFor(
      () => {
        const since = JSON.parse(etcdGet(`instances/${api2.id}`) ?? '{}').startedAt as string | undefined;
        return since !== undefined && Date.now() - Date.parse(since) > READY_MS + 1000;
      },
      { timeoutMs: READY_MS + 15_000, intervalMs: 250, what: `${api2.id} running for ${READY_MS + 1000} ms` },
    );
    await runtime(`set server ${server} state maint`);
    stateSetByHand = true;
    // three agent intervals (1 s each): it answered `ready` every time before, which ended it
    await sleep(3500);
    expect((await row()).admin & FMAINT).toBe(FMAINT);
    // and status says so: etcd's weight alone said nothing was wrong
    const status = ctl(['status']);
    expect(status.stdout).toContain(`  ! ${api2.id} is in maintenance in HAProxy: it gets no requests`);
    const json = JSON.parse(ctl(['status', '--json']).stdout) as { haproxy: { differences: string[] } };
    expect(json.haproxy.differences).toEqual([
      `${api2.id} is in maintenance in HAProxy: it gets no requests`,
    ]);
    await runtime(`set server ${server} state drain`);
    await sleep(3500);
    expect((await row()).admin & FDRAIN).toBe(FDRAIN);
    await runtime(`set server ${server} state ready`);
    stateSetByHand = false;
    // the stack's sync daemon stopped: the agent alone applies a weight, and a deleted key (the
    // weight in haproxy.cfg); it used to keep the weight it had
    const daemon = Number(readFileSync(join(STATE_DIR, 'pids', 'lb-sync.pid'), 'utf8'));
    process.kill(daemon, 'SIGSTOP');
    try {
      etcdPut(key, '5');
      await waitFor(async () => (await row()).uweight === 5, {
        timeoutMs: 5000,
        what: 'weight 5 by the agent',
      });
      etcdDel(key);
      await waitFor(async () => (await row()).uweight === api2.weight, {
        timeoutMs: 5000,
        what: `weight ${api2.weight} by the agent after the delete`,
      });
    } finally {
      process.kill(daemon, 'SIGCONT');
    }
  });

  it('never undoes a drain or maintenance set by hand, with --watch or one-shot', async () => {
    // the sync daemon's part alone: the agent (which keeps it too, above) off for this test
    await runtime(`disable agent ${server}`);
    agentDisabled = true;
    await runtime(`set server ${server} state drain`);
    stateSetByHand = true;
    const output = await startWatch();
    try {
      etcdPut(key, '3');
      await waitFor(async () => (await row()).uweight === 3, { timeoutMs: 5000, what: 'weight 3 applied' });
      await sleep(300);
      expect((await row()).admin & FDRAIN, output()).toBe(FDRAIN);
      etcdDel(key);
      await waitFor(async () => (await row()).uweight === api2.weight, {
        timeoutMs: 5000,
        what: `weight ${api2.weight} after the delete`,
      });
      await sleep(300);
      expect((await row()).admin & FDRAIN, output()).toBe(FDRAIN);

      // maintenance by hand, then weight 0 and a delete: still in maintenance
      await runtime(`set server ${server} state maint`);
      etcdPut(key, '0');
      await waitFor(async () => (await row()).uweight === 0, { timeoutMs: 5000, what: 'weight 0 applied' });
      await sleep(300);
      expect((await row()).admin & FMAINT, output()).toBe(FMAINT);
      etcdDel(key);
      await waitFor(async () => (await row()).uweight === api2.weight, {
        timeoutMs: 5000,
        what: `weight ${api2.weight} after the delete`,
      });
      await sleep(300);
      expect((await row()).admin & FMAINT, output()).toBe(FMAINT);
    } finally {
      await stopWatch();
    }
    // one-shot, a hand-made weight on a server drained by hand: the weight is reset, the drain kept
    await runtime(`set server ${server} state drain`);
    await runtime(`set server ${server} weight 4`);
    const r = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/state (ready|drain|maint)/);
    const after = await row();
    expect(after.uweight).toBe(api2.weight);
    expect(after.admin & FDRAIN).toBe(FDRAIN);
  });
});

describe('weights flipped between the two instances', () => {
  const [api1, api2] = [topology.apis[0]!, topology.apis[1]!];
  const keys = [`lb/weights/${api1.id}`, `lb/weights/${api2.id}`] as const;
  const saved = keys.map((k) => etcdGet(k));
  const restore = () =>
    keys.forEach((k, i) => {
      const v = saved[i];
      if (v === undefined) {
        if (etcdGet(k) !== undefined) etcdDel(k);
      } else etcdPut(k, v);
    });
  afterAll(restore);

  /** uweight and admin bits of each API server in HAProxy */
  async function servers(): Promise<Map<string, { admin: number; uweight: number }>> {
    const text = await haproxyCommand(HAPROXY_SOCKET, `show servers state ${topology.haproxy.backend}`);
    return new Map(
      text
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f[1] === topology.haproxy.backend)
        .map((f) => [f[3]!, { admin: Number(f[6]), uweight: Number(f[7]) }]),
    );
  }

  it('api-1 back from 0 as api-2 goes to 0: HAProxy answers every request meanwhile (no lingering drain)', async () => {
    etcdPut(keys[0], '0');
    await waitFor(async () => (await servers()).get(api1.id)?.uweight === 0, {
      timeoutMs: 5000,
      what: `${api1.id} at weight 0`,
    });
    // at least two agent checks (agent-inter 1 s) at weight 0
    await new Promise((r) => setTimeout(r, 2500));
    expect((await servers()).get(api1.id)?.admin).toBe(0);
    const statuses = new Map<number, number>();
    let running = true;
    const worker = async () => {
      while (running) {
        const r = await fetch(`${HAPROXY}/health`);
        await r.arrayBuffer();
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    await new Promise((r) => setTimeout(r, 300));
    etcdPut(keys[0], '1');
    etcdPut(keys[1], '0');
    await new Promise((r) => setTimeout(r, 2500));
    running = false;
    await Promise.all(workers);
    restore();
    expect([...statuses.keys()]).toEqual([200]);
    await waitFor(
      async () => {
        const s = await servers();
        return [api1.id, api2.id].every((id) => s.get(id)?.admin === 0 && (s.get(id)?.uweight ?? 0) > 0);
      },
      { timeoutMs: 5000, what: 'both servers back in rotation' },
    );
  });
});
