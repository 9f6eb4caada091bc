#!/usr/bin/env node
// Launcher for `npx shardgate-ctl`. It runs the compiled JS of dist/ when that build is up to
// date (build-freshness.js), else the TypeScript source through tsx, so the CLI never lags
// behind an edit. The compiled CLI starts in about 0.8 s against 1.3 s through tsx (2-core box;
// `npx` itself adds about 0.7 s: `node_modules/.bin/shardgate-ctl` skips that). An image that
// ships only dist/ runs the compiled JS.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildIsStale } from './build-freshness.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const source = join(root, 'control-plane', 'cli.ts');
const compiled = join(root, 'dist', 'control-plane', 'cli.js');
const tsx = join(root, 'node_modules', 'tsx');

if (existsSync(source) && existsSync(tsx) && buildIsStale(root, [compiled])) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(compiled).href);
}
