import { describe, expect, it } from 'vitest';
import { apiScenario, type Scenario } from './scenarios.js';

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
