import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WriteCoalescer } from './write-coalescer.js';

/** a Writable that records how its chunks arrive: one entry per write or writev call */
function recorder() {
  const calls: string[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      calls.push([chunk.toString()]);
      cb();
    },
    writev(chunks, cb) {
      calls.push(chunks.map((c) => String(c.chunk)));
      cb();
    },
  });
  return { stream, calls };
}

const immediate = () => new Promise((r) => setImmediate(r));

describe('WriteCoalescer', () => {
  it('sends the writes of one turn in one writev, after the turn', async () => {
    const { stream, calls } = recorder();
    const coalescer = new WriteCoalescer(() => stream);
    for (const cmd of ['a', 'b', 'c']) {
      coalescer.beforeWrite();
      stream.write(cmd);
    }
    expect(calls).toEqual([]);
    await immediate();
    expect(calls).toEqual([['a', 'b', 'c']]);
  });

  it('corks again in the next turn', async () => {
    const { stream, calls } = recorder();
    const coalescer = new WriteCoalescer(() => stream);
    coalescer.beforeWrite();
    stream.write('a');
    await immediate();
    coalescer.beforeWrite();
    stream.write('b');
    coalescer.beforeWrite();
    stream.write('c');
    await immediate();
    expect(calls).toEqual([['a'], ['b', 'c']]);
  });

  it('leaves a missing or ended stream alone', async () => {
    const { stream, calls } = recorder();
    let current: Writable | undefined;
    const coalescer = new WriteCoalescer(() => current);
    coalescer.beforeWrite(); // no stream yet: nothing to cork
    current = stream;
    stream.end('x');
    coalescer.beforeWrite(); // not writable any more
    expect(stream.writableCorked).toBe(0);
    await immediate();
    expect(calls).toEqual([['x']]);
  });

  it('uncorks the stream it corked when the current one was replaced meanwhile', async () => {
    const first = recorder();
    const second = recorder();
    let current: Writable = first.stream;
    const coalescer = new WriteCoalescer(() => current);
    coalescer.beforeWrite();
    first.stream.write('a');
    current = second.stream;
    await immediate();
    expect(first.calls).toEqual([['a']]);
    expect(first.stream.writableCorked).toBe(0);
  });
});
