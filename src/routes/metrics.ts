/** `GET /metrics`: Prometheus text of this instance (CONTRACT.md §6). */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';

export function registerMetricsRoute(app: OpenAPIHono<AppEnv>): void {
  app.get('/metrics', async (c) => {
    const { contentType, body } = await c.get('services').metrics.render();
    return c.body(body, 200, { 'Content-Type': contentType });
  });
}
