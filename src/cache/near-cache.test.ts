import { describe, expect, it } from 'vitest';
import { MemoryKeyTracking } from './memory-key-tracking.js';
import { NearCache } from './near-cache.js';

function setup(max = 10) {
  const tracking = new MemoryKeyTracking();
  tracking.activate(true);
  const near = new NearCache<string>(tracking);
  near.maxEntries = max;
  const entryKey = (v: string) => `e:${v}`;
  /** read `v` of the version key as the store would answer, with an entry under it */
  const fill = (key: string, version: string, entry: string) => {
    const t = near.begin(key);
    near.learn(t, version);
    near.put(`${key}:${entryKey(version)}`, entry, Date.now() + 60_000);
  };
  const lookup = (key: string) => near.lookup(key, (v) => `${key}:${entryKey(v)}`);
  return { tracking, near, fill, lookup };
}

describe('NearCache', () => {
  it('answers a version and its entry once both were learnt', () => {
    const { fill, lookup } = setup();
    expect(lookup('v:a')).toBeUndefined();
    fill('v:a', '0-1-5', 'A5');
    expect(lookup('v:a')).toEqual({ version: '0-1-5', entry: 'A5' });
  });

  it('drops a version when its change is announced, and the old entry is unreachable', () => {
    const { tracking, fill, lookup } = setup();
    fill('v:a', '0-1-5', 'A5');
    tracking.announce(['v:a']);
    expect(lookup('v:a')).toBeUndefined();
  });

  it('does not learn a version whose change was announced while its read was in flight', () => {
    const { tracking, near, lookup } = setup();
    const t = near.begin('v:a');
    tracking.announce(['v:a']); // the store changed the key after answering our read
    near.learn(t, '0-1-5');
    near.put('v:a:e:0-1-5', 'A5', Date.now() + 60_000);
    expect(lookup('v:a')).toBeUndefined();
  });

  it('forgets everything when tracking is lost, and serves nothing until it is back', () => {
    const { tracking, near, fill, lookup } = setup();
    fill('v:a', '0-1-5', 'A5');
    const inFlight = near.begin('v:b');
    tracking.down();
    expect(lookup('v:a')).toBeUndefined();
    expect(near.begin('v:c')).toBeUndefined();
    tracking.up();
    near.learn(inFlight, '0-1-1'); // began in the earlier epoch: not trusted
    near.put('v:b:e:0-1-1', 'B1', Date.now() + 60_000);
    expect(lookup('v:b')).toBeUndefined();
    expect(lookup('v:a')).toBeUndefined();
    fill('v:a', '0-1-6', 'A6');
    expect(lookup('v:a')?.entry).toBe('A6');
  });

  it('a flush announcement (null) forgets everything', () => {
    const { tracking, fill, lookup } = setup();
    fill('v:a', '0-1-5', 'A5');
    tracking.announce(null);
    expect(lookup('v:a')).toBeUndefined();
  });

  it('forget() drops versions at once, for this instance own writes', () => {
    const { near, fill, lookup } = setup();
    fill('v:a', '0-1-5', 'A5');
    near.forget(['v:a']);
    expect(lookup('v:a')).toBeUndefined();
  });

  it('keeps at most maxEntries, least recently used out first, and honours expiry', () => {
    const { near, fill, lookup } = setup(2);
    fill('v:a', '1', 'A');
    fill('v:b', '1', 'B');
    expect(lookup('v:a')?.entry).toBe('A'); // a is now the most recently used
    fill('v:c', '1', 'C');
    expect(near.size).toBe(2);
    expect(lookup('v:b')).toBeUndefined();
    expect(lookup('v:a')?.entry).toBe('A');
    near.put('v:c:e:1', 'C-old', Date.now() + 1);
    return new Promise<void>((done) =>
      setTimeout(() => {
        expect(lookup('v:c')).toBeUndefined();
        done();
      }, 5),
    );
  });

  it('is off at 0 entries: learns and answers nothing', () => {
    const { near, fill, lookup } = setup(0);
    fill('v:a', '1', 'A');
    expect(lookup('v:a')).toBeUndefined();
    expect(near.size).toBe(0);
  });
});
