import { describe, expect, it } from 'vitest';
import { MemoryConfigStore } from './memory-config-store.js';

describe('ConfigNotifier (through the memory store)', () => {
  it('tells listeners of every move of the revision: changes, same-value puts, rejected values', () => {
    const config = new MemoryConfigStore({ initial: { 'cache/ttl_seconds': '60' } });
    const seen: { revision: number; keys: string[] }[] = [];
    config.onChange((snap, changes) =>
      seen.push({ revision: snap.revision, keys: changes.map((c) => c.key) }),
    );
    config.put('cache/ttl_seconds', '30');
    config.put('cache/ttl_seconds', '30'); // same value: nothing changes but the revision
    config.put('cache/ttl_seconds', 'banana'); // rejected: the last good value stays
    config.delete('cache/ttl_seconds');
    expect(seen).toEqual([
      { revision: 2, keys: ['cache/ttl_seconds'] },
      { revision: 3, keys: [] },
      { revision: 4, keys: [] },
      { revision: 5, keys: ['cache/ttl_seconds'] },
    ]);
    expect(config.current().cache.ttlSeconds).toBe(60);
    // the last change was the delete, not the revision-only moves
    expect(config.status().revision).toBe(5);
  });
});
