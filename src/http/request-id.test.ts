import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { requestIdOf } from './request-id.js';

const fresh = () => 'fresh-id';
const CASES = [
  'abc-123',
  'a.b_c:d-e',
  'x'.repeat(128),
  'x'.repeat(129),
  '',
  'two words',
  'a, b',
  'ünïcode',
  'semi;colon',
  '<script>',
];

describe('requestIdOf', () => {
  it('keeps a short plain caller id and replaces anything else with a fresh one', () => {
    expect(requestIdOf('abc-123', fresh)).toBe('abc-123');
    expect(requestIdOf('x'.repeat(128), fresh)).toBe('x'.repeat(128));
    for (const bad of [undefined, '', 'x'.repeat(129), 'two words', 'a, b', 'ünïcode', 'a/b'])
      expect(requestIdOf(bad, fresh), String(bad)).toBe('fresh-id');
    expect(requestIdOf(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps exactly the ids createApp keeps (the raw-request refusals must answer as the app does)', async () => {
    const app = createApp(createMemoryServices());
    for (const id of CASES) {
      const res = await app.request('/nothing-here', { headers: { 'X-Request-Id': id } });
      const kept = res.headers.get('X-Request-Id') === id;
      expect(kept, JSON.stringify(id)).toBe(requestIdOf(id, fresh) === id);
    }
  });
});
