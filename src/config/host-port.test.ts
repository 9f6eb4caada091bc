import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from './host-port.js';

describe('host:port', () => {
  it('parses a name, an IPv4 address and a bracketed IPv6 address', () => {
    expect(parseHostPort('db-1.internal:3306')).toEqual({ host: 'db-1.internal', port: 3306 });
    expect(parseHostPort('127.0.0.1:3316')).toEqual({ host: '127.0.0.1', port: 3316 });
    expect(parseHostPort('[::1]:3316')).toEqual({ host: '::1', port: 3316 });
    expect(parseHostPort('[fd00::2]:3307')).toEqual({ host: 'fd00::2', port: 3307 });
  });

  it('refuses what is not host:port: no port, a bare IPv6 address, spaces, brackets around a name', () => {
    for (const text of [
      'db-1',
      '::1:3306',
      'fd00::2',
      'db 1:3306',
      '[db-1]:3306',
      '[::1]',
      'db:',
      ':3306',
      'db:123456',
    ]) {
      expect(parseHostPort(text), text).toBeUndefined();
    }
  });

  it('formats an IPv6 address in brackets, so its port is not ambiguous, and round-trips', () => {
    expect(formatHostPort('::1', 3316)).toBe('[::1]:3316');
    expect(formatHostPort('db-1.internal', 3306)).toBe('db-1.internal:3306');
    for (const [host, port] of [
      ['fd00::2', 3307],
      ['10.0.0.7', 1],
    ] as const)
      expect(parseHostPort(formatHostPort(host, port))).toEqual({ host, port });
  });
});
