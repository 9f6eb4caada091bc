import { describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { DependencyError } from '../resilience/errors.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { LostMailSweep, type LostMailSweepOptions } from './lost-mail-sweep.js';

interface Row {
  sentAgoS: number | null;
  delivered: boolean;
  deadLettered: boolean;
}

/** the outbox of fake shards, with the rule of OutboxStore.republishLost */
class FakeStore {
  shards = new Map<string, Map<string, Row>>();
  down = new Set<string>();
  calls: { shard: string; grace: number; limit: number }[] = [];
  shardIds(): string[] {
    return [...this.shards.keys()];
  }
  async republishLost(shard: string, grace: number, limit: number) {
    this.calls.push({ shard, grace, limit });
    if (this.down.has(shard)) throw new DependencyError(`mysql-master:${shard}`, 'connect ECONNREFUSED');
    const lost = [...(this.shards.get(shard) ?? new Map<string, Row>())]
      .filter(([, r]) => r.sentAgoS !== null && r.sentAgoS > grace && !r.delivered && !r.deadLettered)
      .sort(([, a], [, b]) => (b.sentAgoS ?? 0) - (a.sentAgoS ?? 0))
      .slice(0, limit);
    for (const [, r] of lost) r.sentAgoS = null;
    return { count: lost.length, oldestSentAt: lost.length > 0 ? new Date(0) : undefined };
  }
}

function setup(over: Partial<LostMailSweepOptions> = {}) {
  const store = new FakeStore();
  const rows = new Map<string, Row>([
    ['lost-1', { sentAgoS: 600, delivered: false, deadLettered: false }],
    ['lost-2', { sentAgoS: 300, delivered: false, deadLettered: false }],
    ['recent', { sentAgoS: 10, delivered: false, deadLettered: false }],
    ['delivered', { sentAgoS: 600, delivered: true, deadLettered: false }],
    ['dead', { sentAgoS: 600, delivered: false, deadLettered: true }],
    ['pending', { sentAgoS: null, delivered: false, deadLettered: false }],
  ]);
  store.shards.set('shard-1', rows);
  const state = { ready: 0, blocked: 0, inFlight: 0, taken: 0, readFails: false };
  const metrics = createPromMetrics();
  const sweep = new LostMailSweep({
    store,
    readyMessages: async () => {
      if (state.readFails) throw new DependencyError('rabbitmq', 'breaker open');
      return state.ready;
    },
    publishingBlockedForMs: () => state.blocked,
    deliveries: () => ({ inFlight: state.inFlight, taken: state.taken }),
    logger: silentLogger,
    metrics,
    ...over,
  });
  return { store, rows, state, metrics, sweep };
}

describe('LostMailSweep', () => {
  it('sends back to unsent the rows published before the grace, never delivered nor dead-lettered', async () => {
    const { rows, sweep, metrics } = setup();
    const outcome = await sweep.pass();
    expect(outcome).toEqual({ republished: new Map([['shard-1', 2]]) });
    expect([...rows].filter(([, r]) => r.sentAgoS === null).map(([id]) => id)).toEqual([
      'lost-1',
      'lost-2',
      'pending',
    ]);
    expect((await metrics.render()).body).toContain(
      'shardgate_mail_lost_republished_total{shard="shard-1"} 2',
    );
    // nothing more the next time
    expect(await sweep.pass()).toEqual({ republished: new Map() });
  });

  it('uses a bounded batch per shard and pass, and the grace it is given', async () => {
    const { store, sweep } = setup({ limit: 1, graceSeconds: 200 });
    await sweep.pass();
    expect(store.calls).toEqual([{ shard: 'shard-1', grace: 200, limit: 1 }]);
    expect(store.shards.get('shard-1')!.get('lost-1')!.sentAgoS).toBeNull();
    expect(store.shards.get('shard-1')!.get('lost-2')!.sentAgoS).toBe(300);
  });

  it('skips the pass while a copy may still exist: messages ready, deliveries in flight, or one taken during the reads', async () => {
    const { store, state, sweep } = setup();
    state.ready = 1;
    expect(await sweep.pass()).toEqual({ skipped: 'messages in the queues' });
    state.ready = 0;
    state.inFlight = 2;
    expect(await sweep.pass()).toEqual({ skipped: 'deliveries in flight' });
    state.inFlight = 0;
    const { sweep: racing, store: racingStore } = setup({
      readyMessages: async () => {
        racingTaken++;
        return 0;
      },
      deliveries: () => ({ inFlight: 0, taken: racingTaken }),
    });
    let racingTaken = 0;
    expect(await racing.pass()).toEqual({ skipped: 'deliveries in flight' });
    expect(racingStore.calls).toEqual([]);
    expect(store.calls).toEqual([]);
  });

  it('skips the pass while publishing is blocked or the queues cannot be read (breaker open, broker down)', async () => {
    const { store, state, sweep } = setup();
    state.blocked = 5000;
    expect(await sweep.pass()).toEqual({ skipped: 'publishing blocked' });
    state.blocked = 0;
    state.readFails = true;
    expect(await sweep.pass()).toEqual({ skipped: 'queues unreadable' });
    expect(store.calls).toEqual([]);
  });

  it('a shard that fails does not stop the others', async () => {
    const { store, sweep } = setup();
    store.shards.set('shard-2', new Map([['x', { sentAgoS: 900, delivered: false, deadLettered: false }]]));
    store.down.add('shard-1');
    expect(await sweep.pass()).toEqual({ republished: new Map([['shard-2', 1]]) });
  });

  it('says when it last looked at every shard (a gauge), not after a skipped pass or a failed shard', async () => {
    const { store, state, sweep, metrics } = setup();
    const lastPass = async () =>
      (await metrics.render()).body.match(
        /^(?:shardgate_)?mail_lost_sweep_last_pass_timestamp_seconds (\S+)$/m,
      )?.[1];
    state.ready = 3;
    await sweep.pass();
    expect(await lastPass()).toBe('0'); // never
    state.ready = 0;
    store.down.add('shard-1');
    await sweep.pass();
    expect(await lastPass()).toBe('0');
    store.down.clear();
    const before = Date.now() / 1000;
    await sweep.pass();
    expect(Number(await lastPass())).toBeGreaterThanOrEqual(Math.floor(before));
  });

  it('logs each kind of failure and each shard apart, and says when one ended', async () => {
    const log = recordingLogger();
    const { store, state, sweep } = setup({ logger: log.logger });
    store.shards.set('shard-2', new Map());
    store.down.add('shard-1');
    await sweep.pass();
    store.down.delete('shard-1');
    store.down.add('shard-2');
    await sweep.pass();
    state.readFails = true;
    await sweep.pass();
    const warned = log.lines
      .filter((l) => l.level === 'warn' && !(l.msg ?? '').startsWith('re-publishing'))
      .map((l) => [l.msg, (l.obj as { shard?: string }).shard]);
    expect(warned).toEqual([
      ['lost-mail sweep failed on a shard', 'shard-1'],
      ['lost-mail sweep failed on a shard', 'shard-2'],
      ['lost-mail sweep skipped: the mail queues could not be read', undefined],
    ]);
    expect(log.lines.filter((l) => l.msg === 'lost-mail sweep works again')).toHaveLength(1);
  });

  it('runs its passes on a timer after the first-pass delay, and stop() waits for a pass', async () => {
    const { store, sweep } = setup({ firstPassMs: 20, intervalMs: 20 });
    sweep.start();
    await new Promise((r) => setTimeout(r, 100));
    await sweep.stop();
    const n = store.calls.length;
    expect(n).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 60));
    expect(store.calls.length).toBe(n);
  });
});
