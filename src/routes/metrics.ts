/** `GET /metrics`: Prometheus text of this instance (CONTRACT.md §6). */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { withCommonResponseHeaders } from '../http/common-response-headers.js';
import { textBody } from '../http/response-headers.js';

export function registerMetricsRoute(app: OpenAPIHono<AppEnv>): void {
  // a plain route (its body is not JSON), in the OpenAPI document all the same
  app.openAPIRegistry.registerPath(
    withCommonResponseHeaders({
      method: 'get',
      path: '/metrics',
      operationId: 'getMetrics',
      tags: ['observability'],
      summary: "This instance's metrics, Prometheus text format",
      security: [],
      responses: {
        200: {
          description: 'the metrics (requests, breakers, pools, cache, config revision)',
          content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: z.string() } },
        },
      },
    }),
  );
  app.get('/metrics', async (c) => {
    const { contentType, body } = await c.get('services').metrics.render();
    return textBody(c, body, 200, contentType);
  });
}
