import { describe, expect, it } from 'vitest';
import { dotSegmentPath } from './raw-request-guard.js';

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
    ])
      expect(dotSegmentPath(url), url).toBe(false);
  });
});
