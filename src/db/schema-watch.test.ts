import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { SchemaWatch } from './schema-watch.js';

function setUp(applied: Record<string, number | Error>) {
  const { logger, lines } = recordingLogger();
  const metrics = createPromMetrics();
  let now = 0;
  const shards = Object.keys(applied);
  const asked: string[] = [];
  const watch = new SchemaWatch({
    inBuild: 9,
    shards: () => shards,
    countApplied: async (id) => {
      asked.push(id);
      const n = applied[id]!;
      if (n instanceof Error) throw n;
      return n;
    },
    logger,
    metrics,
    everyMs: 30_000,
    warnEveryMs: 300_000,
    now: () => now,
  });
  const gauge = async () =>
    [
      ...(await metrics.render()).body.matchAll(
        /shard_schema_migrations_pending\{shard="([^"]+)"\} (-?\d+)/g,
      ),
    ].map((m) => `${m[1]}=${m[2]}`);
  return { watch, lines, gauge, applied, shards, asked, advance: (ms: number) => (now += ms) };
}

describe('SchemaWatch', () => {
  it('finds a shard behind the build, logs it once per warnEveryMs with the command, and tells the data path', async () => {
    const t = setUp({ 's-1': 9, 's-2': 7, 's-3': 11 });
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toBeUndefined();
    expect(t.watch.behind('s-2')).toEqual({ applied: 7, inBuild: 9 });
    expect(t.watch.behind('s-3')).toBeUndefined();
    expect(await t.gauge()).toEqual(['s-1=0', 's-2=2', 's-3=-2']);
    const errors = () => t.lines.filter((l) => l.level === 'error');
    expect(errors().map((l) => l.msg)).toEqual([
      "the shard's schema is behind this build (7 of its 9 migrations applied there): statements that need the rest fail with 503 dependency_unavailable; run: npm run migrate -- --shard s-2",
    ]);
    // not due again before everyMs; again after, without a second line before warnEveryMs
    await t.watch.checkDue();
    expect(t.asked).toHaveLength(3);
    t.advance(30_000);
    await t.watch.checkDue();
    expect(t.asked).toHaveLength(6);
    expect(errors()).toHaveLength(1);
    t.advance(300_000);
    await t.watch.checkDue();
    expect(errors()).toHaveLength(2);
    // migrated: no longer behind, one info line
    t.applied['s-2'] = 9;
    t.advance(30_000);
    await t.watch.checkDue();
    expect(t.watch.behind('s-2')).toBeUndefined();
    expect(t.lines.filter((l) => l.msg === "the shard's schema is up to date again")).toHaveLength(1);
    expect(await t.gauge()).toEqual(['s-1=0', 's-2=0', 's-3=-2']);
  });

  it('keeps the last finding when a check fails, and forgets a shard no longer configured', async () => {
    const t = setUp({ 's-1': 7 });
    await t.watch.checkDue();
    t.applied['s-1'] = new Error('ECONNREFUSED');
    t.advance(30_000);
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toEqual({ applied: 7, inBuild: 9 });
    t.shards.splice(0);
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toBeUndefined();
    expect(await t.gauge()).toEqual([]);
  });
});
