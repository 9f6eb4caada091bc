/**
 * `http/access_log` (config/access-log-mode.ts) through the app: one `request` line per answer the
 * mode selects, live, with what an operator reads an access log for and no credential.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { ACCESS_LOG_KEY } from '../config/access-log-mode.js';
import { parseConfigKey } from '../config/schema.js';
import { callApp } from '../testing/call-app.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { oneShardConfig } from '../testing/one-shard-config.js';
import { recordingLogger } from '../testing/recording-logger.js';

function setup(mode?: string) {
  const { logger, lines } = recordingLogger();
  const config = oneShardConfig(mode === undefined ? {} : { [ACCESS_LOG_KEY]: mode });
  const app = createApp(createMemoryServices({ config, logger }));
  const requests = () =>
    lines.filter((l) => l.msg === 'request').map((l) => l.obj as Record<string, unknown>);
  return { app, config, requests };
}

describe('http/access_log', () => {
  it('is off by default: no line for any answer', async () => {
    const { app, requests } = setup();
    await callApp(app, 'GET', '/health');
    await callApp(app, 'GET', '/v1/books/nope');
    expect(requests()).toEqual([]);
  });

  it('all: a line per answer, with route, status, tenant, shard, where it was read; no credential', async () => {
    const { app, requests } = setup('all');
    const created = await callApp(app, 'POST', '/v1/members', {
      body: { email: 'ann@example.com', name: 'Ann', password: 'correct horse battery' },
    });
    expect(created.status).toBe(201);
    const login = await callApp(app, 'POST', '/v1/auth/login', {
      body: { email: 'ann@example.com', password: 'correct horse battery' },
    });
    const me = await callApp(app, 'GET', '/v1/members/me', { token: login.json.token });
    expect(me.status).toBe(200);
    const missing = await callApp(app, 'GET', '/v1/books/nope?author=x');
    const lines = requests();
    expect(lines.map((l) => [l.method, l.route, l.status])).toEqual([
      ['POST', '/v1/members', 201],
      ['POST', '/v1/auth/login', 200],
      ['GET', '/v1/members/me', 200],
      ['GET', '/v1/books/:id', missing.status],
    ]);
    expect(missing.status).toBeGreaterThanOrEqual(400);
    expect(lines[2]).toMatchObject({
      requestId: me.res.headers.get('X-Request-Id'),
      path: '/v1/members/me',
      tenant: 'acme',
      shard: 'shard-1',
      readFrom: me.res.headers.get('X-Read-From'),
    });
    expect(typeof lines[2]?.ms).toBe('number');
    // the path without its query (a filter is the caller's), and nothing of a header or body
    expect(lines[3]).toMatchObject({ path: '/v1/books/nope', requestId: missing.json.requestId });
    const text = JSON.stringify(lines);
    expect(text).not.toContain(login.json.token);
    expect(text).not.toContain('correct horse');
    expect(text).not.toContain('author');
  });

  it('errors: only answers of 400 and up; a long path is cut', async () => {
    const { app, requests } = setup('errors');
    await callApp(app, 'GET', '/health');
    const long = await callApp(app, 'GET', `/v1/books/${'x'.repeat(2000)}`);
    const invalid = await callApp(app, 'POST', '/v1/members', { body: { email: 'not an email' } });
    const lines = requests();
    expect(lines.map((l) => l.status)).toEqual([long.status, invalid.status]);
    expect([long.status, invalid.status].every((s) => s >= 400)).toBe(true);
    expect((lines[0]?.path as string).length).toBeLessThanOrEqual(257);
  });

  it('cuts a long path without splitting a character of two UTF-16 units', async () => {
    const { app, requests } = setup('all');
    // 255 characters and an emoji (decoded by Hono): a cut at 256 would keep half of it
    await callApp(app, 'GET', `/${'x'.repeat(254)}%F0%9F%98%80tail`);
    const path = requests()[0]?.path as string;
    expect(path).toBe(`/${'x'.repeat(254)}…`);
    expect(path).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });

  it('changes live, and an invalid value is refused naming the modes', async () => {
    const { app, config, requests } = setup('off');
    await callApp(app, 'GET', '/health');
    config.put(ACCESS_LOG_KEY, 'all');
    await callApp(app, 'GET', '/health');
    expect(requests().map((l) => l.route)).toEqual(['/health']);
    expect(parseConfigKey(ACCESS_LOG_KEY, ' errors\n')).toEqual({
      ok: true,
      parsed: { type: 'scalar', key: ACCESS_LOG_KEY, value: 'errors' },
    });
    expect(parseConfigKey(ACCESS_LOG_KEY, 'verbose')).toMatchObject({
      ok: false,
      reason: expect.stringContaining('must be one of off, errors, all'),
    });
  });
});
