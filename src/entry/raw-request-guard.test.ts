import { describe, expect, it } from 'vitest';
import { dotSegmentPath, servableTarget } from './raw-request-guard.js';

describe('dotSegmentPath', () => {
  it('finds "." and ".." segments, raw or percent-encoded, and backslashes, in the path only', () => {
    for (const url of [
      '/x/../metrics',
      '/x/%2e%2e/metrics',
      '/x/%2E./metrics',
      '/%2e/health/config',
      '/v1/books/..',
      '/docs/.',
      '/x\\..\\metrics',
      '/x%5c..%5cmetrics',
      '..',
      '/%6detrics',
      '/health/%63onfig',
      '/v1/%62ooks',
      '/v1/books/%30',
      '/a%2Db',
      '/a%5fb',
      '/a%7Eb',
      '/a%5A',
    ])
      expect(dotSegmentPath(url), url).toBe(true);
    for (const url of [
      '/v1/books',
      '/v1/books/a.b',
      '/v1/books/...',
      '/v1/books/..x',
      '/v1/books?author=../x',
      '/v1/books?cursor=a%2e%2e',
      '/',
      '/health',
      '/v1/books?author=%41',
      '/a%2Fb',
      '/a%20b',
      '/a%40b',
      '/a%5Bb',
      '/a%3a',
      '/a%60b',
      '/a%7Bb',
    ])
      expect(dotSegmentPath(url), url).toBe(false);
  });
});

describe('servableTarget', () => {
  it('takes a path, and an absolute http(s) URL with its scheme in lower case; nothing else', () => {
    expect(servableTarget('/v1/books?x=HTTP://a')).toBe('/v1/books?x=HTTP://a');
    expect(servableTarget('http://a/health')).toBe('http://a/health');
    expect(servableTarget('HTTP://LOCALHOST/Health')).toBe('http://LOCALHOST/Health');
    expect(servableTarget('Https://a/x')).toBe('https://a/x');
    for (const url of ['*', 'localhost:8080', 'ftp://a/x', 'http:/a', 'HTTP:a', ''])
      expect(servableTarget(url), url).toBeUndefined();
  });
});
