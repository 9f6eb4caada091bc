import { describe, expect, it } from 'vitest';
import { notRegistered } from './lb.js';

describe('notRegistered (lb weight|unset of an instance with no registration)', () => {
  it('lb weight: the weight written applies to a server of that name, if there is one', () => {
    expect(notRegistered('lb weight', '/p/', 'api-9')).toBe(
      'lb weight: warning: instance api-9 is not registered now (no /p/instances/api-9); HAProxy applies the weight to its server of that name (lb sync), if its backend has one: a typo of the id never applies',
    );
  });

  it('lb unset: speaks of the haproxy.cfg weight given back, not of a weight applied', () => {
    const line = notRegistered('lb unset', '/p/', 'api-9');
    expect(line).toBe(
      'lb unset: warning: instance api-9 is not registered now (no /p/instances/api-9); lb sync gives its server of that name the haproxy.cfg weight, if its backend has one: for a typo of the id no server changes',
    );
    expect(line).not.toContain('applies the weight');
  });
});
