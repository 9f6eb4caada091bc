import { describe, expect, it } from 'vitest';
import { PasswordWorkBusyError } from '../domain/password-hasher.js';
import { PasswordWorkGate } from './password-work-gate.js';

/** a work that runs until `finish()` is called, recording its start */
function work(started: string[], name: string) {
  let finish!: () => void;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  return {
    run: async () => {
      started.push(name);
      await done;
      return name;
    },
    finish: () => finish(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('PasswordWorkGate', () => {
  it("runs at most `limit` works at once, and the waiting ones take turns by owner: one tenant's queue does not hold another's work", async () => {
    const gate = new PasswordWorkGate(1, { maxWaitMs: 10_000 });
    const started: string[] = [];
    const works = new Map<string, ReturnType<typeof work>>();
    const results: Promise<string>[] = [];
    const add = (owner: string, name: string) => {
      const w = work(started, name);
      works.set(name, w);
      results.push(gate.run(owner, w.run));
    };
    for (let i = 1; i <= 5; i++) add('flood', `f${i}`);
    add('quiet', 'q1');
    await tick();
    expect(started).toEqual(['f1']);
    expect(gate.waiting).toBe(5);
    for (const name of ['f1', 'f2', 'q1', 'f3', 'f4', 'f5']) {
      works.get(name)!.finish();
      await tick();
    }
    expect(started).toEqual(['f1', 'f2', 'q1', 'f3', 'f4', 'f5']);
    expect(await Promise.all(results)).toEqual(['f1', 'f2', 'f3', 'f4', 'f5', 'q1']);
    expect(gate.waiting).toBe(0);
  });

  it('refuses a work that got no turn within maxWaitMs, without running it; a failed work frees its place', async () => {
    const gate = new PasswordWorkGate(1, { maxWaitMs: 30 });
    const started: string[] = [];
    const first = work(started, 'first');
    const running = gate.run('a', first.run);
    const late = gate.run('b', async () => {
      started.push('late');
      return 'late';
    });
    await expect(late).rejects.toBeInstanceOf(PasswordWorkBusyError);
    expect([started, gate.waiting, gate.refused]).toEqual([['first'], 0, 1]);
    first.finish();
    await running;
    await expect(
      gate.run('a', async () => {
        throw new Error('argon2 failed');
      }),
    ).rejects.toThrow('argon2 failed');
    expect(await gate.run('b', async () => 'next')).toBe('next');
  });

  it('runs `limit` works at once', async () => {
    const gate = new PasswordWorkGate(2, { maxWaitMs: 10_000 });
    const started: string[] = [];
    const ws = ['a', 'b', 'c'].map((n) => work(started, n));
    const all = ws.map((w, i) => gate.run(`t${i}`, w.run));
    await tick();
    expect(started).toEqual(['a', 'b']);
    ws[0]!.finish();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    for (const w of ws) w.finish();
    await Promise.all(all);
  });

  it('refuses at once past maxWaiting waiting works; refused waiters are skipped when their turn comes', async () => {
    const refusals: number[] = [];
    const gate = new PasswordWorkGate(1, { maxWaitMs: 20, maxWaiting: 2, onRefused: () => refusals.push(1) });
    const started: string[] = [];
    const first = work(started, 'first');
    const running = gate.run('a', first.run);
    const waiting = [gate.run('a', async () => 'x'), gate.run('b', async () => 'y')];
    await expect(gate.run('c', async () => 'z')).rejects.toMatchObject({ waitedMs: 0 });
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(PasswordWorkBusyError);
    expect([gate.waiting, gate.refused, refusals.length]).toEqual([0, 3, 3]);
    const late = gate.run('a', async () => 'late');
    first.finish();
    await running;
    expect(await late).toBe('late');
  });

  it("refuses at once past an owner's maxWaitingPerOwner, and still queues another owner's work", async () => {
    const gate = new PasswordWorkGate(1, { maxWaitMs: 10_000, maxWaitingPerOwner: 2 });
    const started: string[] = [];
    const first = work(started, 'first');
    const running = gate.run('flood', first.run);
    const queued = [gate.run('flood', async () => 'f1'), gate.run('flood', async () => 'f2')];
    await expect(gate.run('flood', async () => 'f3')).rejects.toBeInstanceOf(PasswordWorkBusyError);
    const other = gate.run('quiet', async () => 'q');
    expect(gate.waiting).toBe(3);
    first.finish();
    await running;
    expect(await Promise.all([...queued, other])).toEqual(['f1', 'f2', 'q']);
  });

  it('refuses a limit below 1', () => {
    expect(() => new PasswordWorkGate(0)).toThrow(RangeError);
  });
});
