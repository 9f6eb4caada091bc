import { setImmediate as immediate } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { renderBatch } from './render-batch.js';

describe('renderBatch', () => {
  it('calls made in the same turn of the event loop share one rendering', async () => {
    let renders = 0;
    const get = renderBatch(async () => ++renders);
    const values = await Promise.all(Array.from({ length: 100 }, () => get()));
    expect(renders).toBe(1);
    expect(new Set(values)).toEqual(new Set([1]));
  });

  it('a call made after an earlier one was answered gets a rendering of its own', async () => {
    let counter = 0;
    const get = renderBatch(async () => counter);
    const before = await get();
    counter += 1;
    const after = await get();
    expect([before, after]).toEqual([0, 1]);
  });

  it('the rendering begins after the last call of its batch arrived', async () => {
    let counter = 0;
    const get = renderBatch(async () => counter);
    const first = get();
    counter = 7; // a change made in the same turn, after the first call
    const second = get();
    expect(await Promise.all([first, second])).toEqual([7, 7]);
  });

  it('a call that arrives while a rendering runs waits for the next one', async () => {
    let renders = 0;
    let release: () => void = () => {};
    const get = renderBatch(async () => {
      renders += 1;
      if (renders === 1) await new Promise<void>((r) => (release = r));
      return renders;
    });
    const first = get();
    await immediate(); // the first rendering has begun and waits
    await immediate();
    const second = get();
    release();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
  });

  it('one rendering runs at a time: calls during a slow one share the next, begun after it ends', async () => {
    let renders = 0;
    let running = 0;
    let most = 0;
    const releases: (() => void)[] = [];
    const get = renderBatch(async () => {
      renders += 1;
      running += 1;
      most = Math.max(most, running);
      await new Promise<void>((r) => releases.push(r));
      running -= 1;
      return renders;
    });
    const first = get();
    await immediate();
    await immediate();
    const during = [get(), get()];
    await immediate();
    await immediate();
    const later = get(); // still before the second rendering begins: joins it
    expect(renders).toBe(1);
    releases.shift()!();
    await first;
    while (releases.length === 0) await immediate();
    expect(renders).toBe(2);
    releases.shift()!();
    expect(await Promise.all([...during, later])).toEqual([2, 2, 2]);
    expect(most).toBe(1);
  });

  it('render throwing before it returns a promise fails its batch, not the process', async () => {
    let fail = true;
    const get = renderBatch((): Promise<string> => {
      if (fail) throw new Error('thrown at once');
      return Promise.resolve('ok');
    });
    await expect(get()).rejects.toThrow('thrown at once');
    fail = false;
    expect(await get()).toBe('ok');
  });

  it('a failed rendering fails its batch only', async () => {
    let fail = true;
    const get = renderBatch(async () => {
      if (fail) throw new Error('collect failed');
      return 'ok';
    });
    const batch = [get(), get()];
    await expect(Promise.all(batch)).rejects.toThrow('collect failed');
    fail = false;
    expect(await get()).toBe('ok');
  });
});
