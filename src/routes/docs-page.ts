/**
 * `GET /docs`: Swagger UI over `/openapi.json`, a pinned release of swagger-ui-dist.
 *
 * Contract:
 * - With `DocsAssets` (the Node entry reads them from the swagger-ui-dist package), the page loads
 *   its script and stylesheet from this instance, under `DOCS_ASSETS_PATH`; without (a runtime
 *   that has no files), from jsDelivr. Either way each file carries its subresource integrity, so a
 *   browser refuses other bytes (the package's files are the ones jsDelivr serves).
 * - An asset answer is `Cache-Control: public, max-age=31536000, immutable`: its path names the
 *   release. A file the package lacks, or one that cannot be read, is a 404 problem; the read is
 *   logged once per failure.
 * Failure mode: an entry whose package is missing or of another release passes no `DocsAssets`
 * (the Node entry checks the version) and the page falls back to the CDN.
 */
import { swaggerUI } from '@hono/swagger-ui';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { ProblemError } from '../http/problem.js';
import { setHeader, textBody } from '../http/response-headers.js';

/** swagger-ui-dist release /docs loads (package.json pins the same for the Node entry) */
export const SWAGGER_UI_VERSION = '5.35.0';

/** the files the page loads, with the Content-Type each is served as */
export const SWAGGER_UI_FILES = {
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui.css': 'text/css; charset=utf-8',
} as const;
export type SwaggerUiFile = keyof typeof SWAGGER_UI_FILES;

/**
 * Subresource integrity of that release's two files: the sha384 of the files in the npm package
 * swagger-ui-dist@5.35.0, which jsDelivr serves as they are (`npm pack swagger-ui-dist@5.35.0`,
 * then `openssl dgst -sha384 -binary <file> | base64`). A new SWAGGER_UI_VERSION needs new values.
 */
const SWAGGER_UI_INTEGRITY: Readonly<Record<SwaggerUiFile, string>> = {
  'swagger-ui-bundle.js': 'sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9',
  'swagger-ui.css': 'sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I',
};

/** the bytes of one file of SWAGGER_UI_VERSION; rejects when they cannot be read */
export interface DocsAssets {
  read(file: SwaggerUiFile): Promise<Uint8Array>;
}

/** where the page finds its files when they are served here (Swagger UI's own path below it) */
export const DOCS_ASSETS_PATH = '/docs/assets';

function isSwaggerUiFile(name: string): name is SwaggerUiFile {
  return Object.hasOwn(SWAGGER_UI_FILES, name);
}

/** the attributes of `url`'s integrity check (none for a file not listed above) */
function integrityOf(url: string): string {
  const name = url.slice(url.lastIndexOf('/') + 1);
  return isSwaggerUiFile(name) ? ` integrity="${SWAGGER_UI_INTEGRITY[name]}" crossorigin="anonymous"` : '';
}

/** the page of @hono/swagger-ui's own, with the integrity of each file */
function swaggerPage(asset: { css: string[]; js: string[] }): string {
  return `<div>
      <div id="swagger-ui"></div>
      ${asset.css.map((url) => `<link rel="stylesheet" href="${url}"${integrityOf(url)} />`).join('')}
      ${asset.js.map((url) => `<script src="${url}"${integrityOf(url)}></script>`).join('')}
      <script>
        window.onload = () => {
          window.ui = SwaggerUIBundle({ dom_id: '#swagger-ui', url: '/openapi.json' })
        }
      </script>
    </div>`;
}

const notFound = (detail: string) =>
  new ProblemError({ status: 404, code: 'not_found', title: 'Not Found', detail });

export function registerDocsRoutes(app: OpenAPIHono<AppEnv>, assets: DocsAssets | undefined): void {
  app.get(
    '/docs',
    swaggerUI({
      url: '/openapi.json',
      version: SWAGGER_UI_VERSION,
      // undefined: @hono/swagger-ui's jsDelivr base
      baseUrl: assets ? DOCS_ASSETS_PATH : undefined,
      manuallySwaggerUIHtml: swaggerPage,
    }),
  );
  if (!assets) return;
  // the bytes of each file once read (a failed read is tried again at the next request)
  const cached = new Map<SwaggerUiFile, Promise<Uint8Array>>();
  const release = `swagger-ui-dist@${SWAGGER_UI_VERSION}`;
  // the release is a parameter: Hono 4.13's router matched no route with `@` in a static segment
  app.get(`${DOCS_ASSETS_PATH}/:release/:file`, async (c) => {
    const file = c.req.param('file');
    if (c.req.param('release') !== release || !isSwaggerUiFile(file)) {
      throw notFound(`/docs serves ${release}'s swagger-ui-bundle.js and swagger-ui.css only`);
    }
    let bytes = cached.get(file);
    if (!bytes) {
      bytes = assets.read(file);
      cached.set(file, bytes);
    }
    let body: Uint8Array;
    try {
      body = await bytes;
    } catch (error) {
      cached.delete(file);
      c.get('services').logger.warn(
        { file, err: String(error) },
        'could not read a Swagger UI file of the swagger-ui-dist package; /docs cannot load it',
      );
      throw notFound(`${file} could not be read on this instance`);
    }
    setHeader(c, 'Cache-Control', 'public, max-age=31536000, immutable');
    return textBody(c, body, 200, SWAGGER_UI_FILES[file]);
  });
}
