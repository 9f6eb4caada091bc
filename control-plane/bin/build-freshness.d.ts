/**
 * Declarations of build-freshness.js, the one rule of whether dist/ is older than its sources:
 * used by the shardgate-ctl launcher (plain JS, before any TypeScript loader) and by the local
 * stack's `up` (stack/build.ts).
 */
/** true when `root`'s build (`dist/src/entry/node.js` and every file of `also`) is missing or older than a source */
export function buildIsStale(root: string, also?: readonly string[]): boolean;
