import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { SchemaWatch } from './schema-watch.js';

/** a build of 9 migrations, `when` 1..9 */
const journal = Array.from({ length: 9 }, (_, i) => ({ tag: `000${i}_m`, when: i + 1 }));
/** the records of a shard with the first n applied */
const firstN = (n: number) => journal.slice(0, n).map((e) => e.when);

function setUp(applied: Record<string, number[] | Error>) {
  const { logger, lines } = recordingLogger();
  const metrics = createPromMetrics();
  let now = 0;
  const shards = Object.keys(applied);
  const asked: string[] = [];
  const watch = new SchemaWatch({
    journal,
    shards: () => shards,
    recorded: async (id: string) => {
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
    const t = setUp({ 's-1': firstN(9), 's-2': firstN(7), 's-3': [...firstN(9), 10, 11] });
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toBeUndefined();
    expect(t.watch.behind('s-2')).toEqual({ pending: 2, first: '0007_m', inBuild: 9 });
    expect(t.watch.behind('s-3')).toBeUndefined();
    expect(await t.gauge()).toEqual(['s-1=0', 's-2=2', 's-3=-2']);
    const errors = () => t.lines.filter((l) => l.level === 'error');
    expect(errors().map((l) => l.msg)).toEqual([
      "the shard's schema is behind this build (2 of its 9 migrations not applied there, the first 0007_m): statements that need them fail with 503 dependency_unavailable; run: npm run migrate -- --shard s-2",
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
    t.applied['s-2'] = firstN(9);
    t.advance(30_000);
    await t.watch.checkDue();
    expect(t.watch.behind('s-2')).toBeUndefined();
    expect(t.lines.filter((l) => l.msg === "the shard's schema is up to date again")).toHaveLength(1);
    expect(await t.gauge()).toEqual(['s-1=0', 's-2=0', 's-3=-2']);
  });

  it('keeps the last finding when a check fails, and forgets a shard no longer configured', async () => {
    const t = setUp({ 's-1': firstN(7) });
    await t.watch.checkDue();
    t.applied['s-1'] = new Error('ECONNREFUSED');
    t.advance(30_000);
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toEqual({ pending: 2, first: '0007_m', inBuild: 9 });
    t.shards.splice(0);
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toBeUndefined();
    expect(await t.gauge()).toEqual([]);
  });

  it('judges as drizzle does, not by a count: a record made twice hides no missing migration; a gap is said apart', async () => {
    // 0003 recorded twice by a repair, 0008 missing: 8 records of 9
    const t = setUp({ 's-1': [1, 2, 3, 4, 4, 5, 6, 7, 8] });
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toEqual({ pending: 1, first: '0008_m', inBuild: 9 });
    // a gap before the last record: not "behind" (migrate would apply nothing), one error naming it
    const gap = setUp({ 's-1': [1, 2, 3, 5, 6, 7, 8, 9] });
    await gap.watch.checkDue();
    expect(gap.watch.behind('s-1')).toBeUndefined();
    expect(gap.lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      `the shard's schema lacks migrations that npm run migrate will not apply (0003_m: not recorded, older than the last recorded): apply and record them by hand (docs/operations.md, "A migration that failed part-way")`,
    ]);
    // a newer build's schema: one warning, a negative gauge
    t.applied['s-1'] = [...firstN(9), 10];
    t.advance(30_000);
    await t.watch.checkDue();
    t.advance(30_000);
    await t.watch.checkDue();
    expect(t.watch.behind('s-1')).toBeUndefined();
    expect(await t.gauge()).toEqual(['s-1=-1']);
    expect(t.lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      "the shard's schema is newer than this build (1 migration(s) it does not know recorded there): fine while the newer build only added to it; upgrade this instance",
    ]);
  });
});
