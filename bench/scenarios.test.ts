import { describe, expect, it } from 'vitest';
import { apiScenario, type Fixtures, pacedLending, type Scenario } from './scenarios.js';
import type { TenantFixture } from './setup.js';

const scenario = (key: string, over: Partial<Scenario> = {}): Scenario => ({
  key,
  name: key,
  kind: 'write',
  connections: 1,
  steps: [],
  ...over,
});

describe('apiScenario', () => {
  const all = [
    scenario('ceiling', { kind: 'ceiling' }),
    scenario('loans'),
    scenario('loans-in-process', { inProcess: true }),
  ];

  it('finds a scenario that sends HTTP requests to the API', () => {
    expect(apiScenario(all, 'loans').key).toBe('loans');
  });

  it('refuses the ceiling, the in-process writes and unknown keys, naming the usable ones', () => {
    for (const key of ['ceiling', 'loans-in-process', 'nosuch'])
      expect(() => apiScenario(all, key)).toThrow(`no API scenario "${key}" (one of loans)`);
  });
});

describe('pacedLending', () => {
  const tenant = (id: string): TenantFixture =>
    ({
      id,
      shard: 'shard-1',
      books: [`${id}-book`],
      members: [{ token: `${id}-token` }],
    }) as unknown as TenantFixture;
  const fixtures = { lenders: [tenant('t1')] } as unknown as Fixtures;

  it('borrows until a borrow was answered, then returns the oldest answered loan first', () => {
    const source = pacedLending(fixtures);
    const first = source.next();
    const second = source.next();
    for (const b of [first, second]) {
      expect(b.req).toMatchObject({ method: 'POST', path: '/v1/loans', body: '{"bookId":"t1-book"}' });
      expect(b.req.headers).toMatchObject({ 'X-Tenant-ID': 't1', Authorization: 'Bearer t1-token' });
    }
    second.answered!(201, '{"id":"loan-2"}');
    first.answered!(201, '{"id":"loan-1"}');
    expect(source.next().req).toMatchObject({ path: '/v1/loans/loan-2/return' });
    expect(source.next().req).toMatchObject({ path: '/v1/loans/loan-1/return' });
    // a refused borrow leaves nothing to return
    const refused = source.next();
    expect(refused.req.path).toBe('/v1/loans');
    refused.answered!(409, '{"type":"about:blank","code":"no_copy_available"}');
    expect(source.next().req.path).toBe('/v1/loans');
  });
});
