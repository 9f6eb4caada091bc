/**
 * The text of a file under the repository's `docs/` (`docText('http-api.md')`), for unit tests
 * that hold the code to what the docs say. Node-only: kept out of the runtime-neutral core, whose
 * tests import it from here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function docText(name: string): string {
  return readFileSync(join(import.meta.dirname, '..', '..', 'docs', name), 'utf8');
}
