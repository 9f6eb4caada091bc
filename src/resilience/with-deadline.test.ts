import { describe, expect, it } from 'vitest';
import { withDeadline } from './with-deadline.js';

describe('withDeadline', () => {
  it('answers what the work answers in time, and rejects with the message once the time is up', async () => {
    await expect(withDeadline(Promise.resolve('done'), 1000, 'late')).resolves.toBe('done');
    await expect(withDeadline(Promise.reject(new Error('no')), 1000, 'late')).rejects.toThrow('no');
    await expect(withDeadline(new Promise(() => {}), 10, 'not within 10 ms')).rejects.toThrow(
      'not within 10 ms',
    );
  });

  it('swallows a rejection of the work that comes after the deadline', async () => {
    let fail: (e: Error) => void = () => {};
    const work = new Promise<void>((_, reject) => {
      fail = reject;
    });
    await expect(withDeadline(work, 5, 'late')).rejects.toThrow('late');
    fail(new Error('too late')); // no unhandled rejection
    await new Promise((r) => setTimeout(r, 5));
  });
});
