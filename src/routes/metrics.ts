/** `GET /metrics`: Prometheus text of this instance (CONTRACT.md §6). */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { textBody } from '../http/response-headers.js';

export function registerMetricsRoute(app: OpenAPIHono<AppEnv>): void {
  app.get('/metrics', async (c) => {
    const { contentType, body } = await c.get('services').metrics.render();
    return textBody(c, body, 200, contentType);
  });
}
