import { describe, expect, it } from 'vitest';
import { besideOutcomeOf } from './beside-outcome.js';

const DEADLINE = 'no answer within 1500 ms';
const netError = (code: string) =>
  Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code, errno: -1 });

describe('besideOutcomeOf', () => {
  it('an error packet of the server: alive, not a failure of the path', () => {
    const tooMany = Object.assign(new Error('Too many connections'), {
      code: 'ER_CON_COUNT_ERROR',
      errno: 1040,
      sqlState: '08004',
    });
    expect(besideOutcomeOf(tooMany, DEADLINE)).toBe('server_error');
    const denied = Object.assign(new Error('Access denied'), {
      code: 'ER_ACCESS_DENIED_ERROR',
      errno: 1045,
      sqlState: '28000',
    });
    expect(besideOutcomeOf(denied, DEADLINE)).toBe('server_error');
    // before the handshake mysql2 gives an error packet an empty sqlState (no `#` marker)
    const early = Object.assign(new Error('Too many connections'), { errno: 1040, sqlState: '' });
    expect(besideOutcomeOf(early, DEADLINE)).toBe('server_error');
  });

  it('our bound or mysql2 connectTimeout: timed out', () => {
    expect(besideOutcomeOf(new Error(DEADLINE), DEADLINE)).toBe('timed_out');
    expect(besideOutcomeOf(netError('ETIMEDOUT'), DEADLINE)).toBe('timed_out');
  });

  it('refused, reset, lost: unreachable', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'PROTOCOL_CONNECTION_LOST'])
      expect(besideOutcomeOf(netError(code), DEADLINE)).toBe('unreachable');
    expect(besideOutcomeOf(new Error('something else'), DEADLINE)).toBe('unreachable');
    expect(besideOutcomeOf(undefined, DEADLINE)).toBe('unreachable');
  });

  it('out of descriptors in this process: local', () => {
    expect(besideOutcomeOf(netError('EMFILE'), DEADLINE)).toBe('local');
    expect(besideOutcomeOf(netError('ENFILE'), DEADLINE)).toBe('local');
    // no local port left to bind
    expect(besideOutcomeOf(netError('EADDRNOTAVAIL'), DEADLINE)).toBe('local');
  });
});
