/**
 * The `--trace-gc` reading of bench/gc-trace.ts, on lines Node 20 printed on this machine.
 */
import { describe, expect, it } from 'vitest';
import { parseTraceGc, summariseGc } from './gc-trace.js';

const LINES = [
  '[10294:0x409a5d70]     5708 ms: Scavenge 122.9 (199.0) -> 76.5 (202.5) MB, 8.80 / 0.01 ms  (average mu = 0.997, current mu = 0.997) task; ',
  '[10294:0x409a5d70]     6432 ms: Scavenge 126.9 (202.5) -> 80.9 (206.8) MB, 13.58 / 0.01 ms  (average mu = 0.997, current mu = 0.997) task; ',
  '[10294:0x409a5d70]     6475 ms: Mark-Compact 82.5 (206.8) -> 28.9 (176.5) MB, 5.04 / 0.06 ms  (+ 3.5 ms in 27 steps since start of marking, biggest step 0.2 ms, walltime since start of marking 42 ms) (average mu = 0.998, current mu = 0.998) finalize incremental marking via task; GC in old space requested',
  '[10294:0x409a5d70]     7227 ms: Scavenge 81.7 (176.5) -> 34.0 (176.5) MB, 19.48 / 0.02 ms  (average mu = 0.998, current mu = 0.998) task; ',
  '[10294:0x409a5d70]     7896 ms: Scavenge 81.1 (176.5) -> 37.7 (176.5) MB, 18.47 / 0.01 ms  (average mu = 0.998, current mu = 0.998) task; ',
  'an unrelated line of output',
];

describe('parseTraceGc', () => {
  it('reads the kind, the heap after and the pause, and ignores other output', () => {
    expect(parseTraceGc(LINES[0]!)).toEqual({ kind: 'scavenge', afterMb: 76.5, pauseMs: 8.8 });
    expect(parseTraceGc(LINES[2]!)).toEqual({ kind: 'mark-compact', afterMb: 28.9, pauseMs: 5.04 });
    expect(parseTraceGc(LINES[5]!)).toBeUndefined();
  });
});

describe('summariseGc', () => {
  it('averages the heap growth between consecutive scavenges only, not across a full collection', () => {
    const g = summariseGc(LINES.map(parseTraceGc).filter((e) => e !== undefined));
    expect(g.scavenges).toBe(4);
    expect(g.meanPauseMs).toBeCloseTo((8.8 + 13.58 + 19.48 + 18.47) / 4, 5);
    expect(g.maxPauseMs).toBe(19.48);
    // 76.5 → 80.9 and 34.0 → 37.7; the drop across the Mark-Compact is not growth
    expect(g.leftPerScavengeMb).toBeCloseTo((4.4 + 3.7) / 2, 5);
    expect(g.fullCollections).toBe(1);
    expect(g.fullPauseMs).toBe(5.04);
  });

  it('is all zeros without collections', () => {
    expect(summariseGc([])).toMatchObject({ scavenges: 0, meanPauseMs: 0, leftPerScavengeMb: 0 });
  });
});
