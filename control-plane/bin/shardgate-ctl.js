#!/usr/bin/env node
// Launcher for `npx shardgate-ctl`. In a source checkout (control-plane/cli.ts and tsx present) it
// runs the TypeScript source, so the CLI never lags behind an edit; in a production image that
// ships only dist/ it runs the compiled JS.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const source = join(root, 'control-plane', 'cli.ts');
const compiled = join(root, 'dist', 'control-plane', 'cli.js');
const tsx = join(root, 'node_modules', 'tsx');
if (existsSync(source) && existsSync(tsx)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(source).href);
} else {
  await import(pathToFileURL(compiled).href);
}
