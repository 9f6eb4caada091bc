/**
 * The export revision of a `config export` file (its YAML header, or REVISION_FIELD of a JSON
 * export), and what it refuses when the file is applied: a key changed, created or deleted in etcd
 * since that revision (someone's later edit the file would undo). A file that claims a revision it
 * cannot have is a UserError; a history read etcd does not answer is the context's
 * EtcdUnreachableError (exit 2); a compacted one refuses the file (deletions cannot be checked).
 */
import type { Change } from './change-plan.js';
import { isCompactedError } from './compacted-error.js';
import type { CtlContext } from './ctl-context.js';
import { UserError } from './ctl-errors.js';
import type { PrefixRead } from './prefix-read.js';
import type { KeyProblem } from './validate-changes.js';

/** The header `config export` writes above the YAML, naming the etcd revision it read. */
export const EXPORT_HEADER = '# shardgate config, etcd revision ';

/**
 * The top-level field of `config export --json` naming the etcd revision it read (JSON has no
 * comments). Not a config key: `config apply` takes it out of the document before reading keys.
 */
export const REVISION_FIELD = '$etcdRevision';

/** The revision in an exported file's header; undefined for a file without one. */
export function exportedRevision(text: string): number | undefined {
  // the first line that says anything: a BOM or blank lines an editor added do not hide the header
  const first =
    text
      .replace(/^\uFEFF/, '')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? '';
  if (!first.startsWith(EXPORT_HEADER.trim())) return undefined;
  const raw = first.slice(EXPORT_HEADER.trim().length).trim();
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  // a header that names no revision claims a check it cannot have: refused, not taken as none
  if (!(n > 0)) {
    throw new UserError(
      `the file's header "${first.slice(0, 80)}" names no etcd revision ("${raw.slice(0, 30)}" is not one): export the file again, or remove the header line to apply it unchecked`,
    );
  }
  return n;
}

/**
 * The export revision of a file (`text`, parsed as `doc`): its YAML header's, or its
 * REVISION_FIELD, which is removed from the returned document; the lower of both if it has both.
 * undefined for a file with neither (hand-written, or its first line removed). A REVISION_FIELD
 * that is not a revision is a UserError: the file claims a check it cannot have.
 */
export function splitExportRevision(text: string, doc: unknown): { revision?: number; doc: unknown } {
  const header = exportedRevision(text);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !(REVISION_FIELD in doc)) {
    return { revision: header, doc };
  }
  const { [REVISION_FIELD]: field, ...rest } = doc as Record<string, unknown>;
  if (typeof field !== 'number' || !Number.isSafeInteger(field) || field < 1) {
    throw new UserError(
      `${REVISION_FIELD} must be the etcd revision the file was exported at (a whole number ≥ 1), got ${JSON.stringify(field)}`,
    );
  }
  return { revision: header === undefined ? field : Math.min(header, field), doc: rest };
}

/**
 * The changes that would overwrite (or delete) a key someone changed in etcd after the file was
 * exported at `exportedAt`: applying the file would silently undo that edit. A key created since
 * counts too.
 */
export function changedSinceExport(read: PrefixRead, changes: Change[], exportedAt: number): KeyProblem[] {
  return changes.flatMap((c) => {
    const mod = read.mods.get(c.key);
    if (mod === undefined || mod <= exportedAt) return [];
    return [
      {
        key: c.key,
        conflict: true as const,
        reason: `changed in etcd at revision ${mod}, after the file was exported at revision ${exportedAt} (export again, or --force)`,
      },
    ];
  });
}

/**
 * The changes that would re-create a key someone deleted in etcd after the file was exported at
 * `exportedAt`: one the change creates (absent now) that existed at that revision
 * (`keysAtExport`). Applying the file would silently undo that deletion, as it would an edit.
 */
export function deletedSinceExport(
  changes: readonly Change[],
  keysAtExport: ReadonlySet<string>,
  exportedAt: number,
): KeyProblem[] {
  return changes
    .filter((c) => c.old === undefined && c.new !== undefined && keysAtExport.has(c.key))
    .map((c) => ({
      key: c.key,
      conflict: true as const,
      reason: `deleted in etcd after the file was exported at revision ${exportedAt} (export again, or --force)`,
    }));
}

/**
 * The keys under the prefix at revision `at` (relative to the prefix), or 'compacted' when etcd
 * has compacted its history past that revision. Other failures are the context's (exit 2).
 */
async function keysAtRevision(ctx: CtlContext, at: number): Promise<Set<string> | 'compacted'> {
  return ctx.call(async () => {
    try {
      const keys = await ctx.etcd.getAll().prefix(ctx.prefix).revision(at).keys();
      return new Set(keys.map((k) => k.slice(ctx.prefix.length)));
    } catch (error) {
      if (isCompactedError(error)) return 'compacted';
      throw error;
    }
  });
}

/** How many keys a message that could list hundreds names before it counts the others. */
const KEYS_NAMED = 5;

function namedKeys(prefix: string, keys: readonly string[]): string {
  const named = keys.slice(0, KEYS_NAMED).map((k) => `${prefix}${k}`);
  const others = keys.length - named.length;
  return `${named.join(', ')}${others > 0 ? ` and ${others} other key(s)` : ''}`;
}

/**
 * Everything that refuses applying `changes` from a file exported at `exportedAt` to etcd as
 * `read` found it: `notes` about the file as a whole, `problems` by key.
 * - A revision above etcd's own: the file was not exported from this etcd (or the number was
 *   edited), so no check against it means anything.
 * - A key changed (or created) in etcd after the export (changedSinceExport).
 * - A key the change creates that existed at the export revision: deleted since
 *   (deletedSinceExport). That takes a read at the export revision; if etcd compacted its history
 *   past it, the deletions cannot be checked, which refuses the file as well (when it creates a key).
 */
export async function exportRevisionProblems(
  ctx: CtlContext,
  read: PrefixRead,
  changes: readonly Change[],
  exportedAt: number,
): Promise<{ notes: string[]; problems: KeyProblem[] }> {
  if (exportedAt > read.revision) {
    return {
      notes: [
        `the file says revision ${exportedAt} but etcd is at ${read.revision}: it was not exported from this etcd (export again, or --force)`,
      ],
      problems: [],
    };
  }
  const problems = changedSinceExport(read, [...changes], exportedAt);
  const creates = changes.filter((c) => c.old === undefined && c.new !== undefined);
  if (creates.length === 0) return { notes: [], problems };
  const keys = await keysAtRevision(ctx, exportedAt);
  if (keys === 'compacted') {
    return {
      notes: [
        `cannot check whether the ${creates.length} key(s) the file would create (${namedKeys(
          ctx.prefix,
          creates.map((c) => c.key),
        )}) were deleted in etcd after it was exported at revision ${exportedAt}: etcd has compacted its history past that revision (export again, or --force)`,
      ],
      problems,
    };
  }
  return { notes: [], problems: [...problems, ...deletedSinceExport(changes, keys, exportedAt)] };
}
