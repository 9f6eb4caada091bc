/**
 * `/docs`'s Swagger UI files from the swagger-ui-dist package installed beside the app, so the
 * page works without the internet (routes/docs-page.ts).
 *
 * Contract: `swaggerUiFiles()` answers undefined, and `/docs` loads the files from jsDelivr,
 * when the package cannot be found or is not release SWAGGER_UI_VERSION (the page's integrity
 * values are that release's: other bytes would be refused by the browser). A file is read at
 * its first request, not at start.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type DocsAssets, SWAGGER_UI_VERSION } from '../routes/docs-page.js';

export type SwaggerUiFilesResult = { assets: DocsAssets } | { assets?: undefined; reason: string };

export function swaggerUiFiles(from: string = import.meta.url): SwaggerUiFilesResult {
  let manifest: string;
  try {
    manifest = createRequire(from).resolve('swagger-ui-dist/package.json');
  } catch (error) {
    return { reason: `the swagger-ui-dist package is not installed (${String(error).split('\n')[0]})` };
  }
  const version = (createRequire(from)(manifest) as { version?: unknown }).version;
  if (version !== SWAGGER_UI_VERSION) {
    return { reason: `swagger-ui-dist is ${String(version)}, /docs needs ${SWAGGER_UI_VERSION}` };
  }
  const dir = dirname(manifest);
  return { assets: { read: (file) => readFile(join(dir, file)) } };
}
