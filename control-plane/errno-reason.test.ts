import { describe, expect, it } from 'vitest';
import { errnoReason, NOT_CONNECTED_REASONS } from './errno-reason.js';

describe('errnoReason', () => {
  it("words an error's errno code", () => {
    const e = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5672'), { code: 'ECONNREFUSED' });
    expect(errnoReason(e)).toBe('connection refused');
    expect(errnoReason(Object.assign(new Error('x'), { code: 'EHOSTUNREACH' }))).toBe('host unreachable');
  });

  it('finds a known code in the message when the error has none (gRPC wraps it)', () => {
    expect(
      errnoReason(
        new Error(
          '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNRESET 10.0.0.1:2379',
        ),
      ),
    ).toBe('connection reset');
    expect(errnoReason('getaddrinfo EAI_AGAIN etcd.local')).toBe('host name lookup failed');
  });

  it('is undefined when no known code is named', () => {
    expect(errnoReason(new Error('Handshake terminated by server: 403 (ACCESS-REFUSED)'))).toBeUndefined();
    expect(errnoReason(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }))).toBeUndefined();
    expect(errnoReason(undefined)).toBeUndefined();
  });

  it('counts every reason but a reset as a failure to connect', () => {
    expect([...NOT_CONNECTED_REASONS].sort()).toEqual([
      'connect timed out',
      'connection refused',
      'host name lookup failed',
      'host unreachable',
      'network unreachable',
      'unknown host',
    ]);
  });
});
