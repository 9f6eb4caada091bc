/**
 * `config export [-o file]` and `config apply -f file [--dry-run] [--prune]`.
 * Apply validates everything first, prints a diff, and writes in one guarded transaction. A file
 * with the export header (`# shardgate config, etcd revision N`) is also refused where it would
 * change a key that changed in etcd after revision N (someone's later edit), unless --force.
 * Keys absent from the file are left alone unless --prune (then managed keys not in the file
 * are deleted; `instances/` is never touched).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { fromDocument, toDocument } from '../config-document.js';
import {
  changedSinceExport,
  commitChanges,
  EXPORT_HEADER,
  exportedRevision,
  formatChange,
  isManagedKey,
  planChanges,
  problemsMessage,
  readPrefix,
  validateChanges,
} from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';

export async function exportCommand(
  ctx: CtlContext,
  opts: { output?: string; json?: boolean },
): Promise<void> {
  const read = await readPrefix(ctx);
  const managed = new Map([...read.entries].filter(([k]) => isManagedKey(k)));
  const doc = toDocument(managed);
  const text = opts.json
    ? `${JSON.stringify(doc, null, 2)}\n`
    : `${EXPORT_HEADER}${read.revision}\n${stringify(doc)}`;
  if (opts.output) {
    writeFileSync(opts.output, text);
    ctx.out(`wrote ${managed.size} key(s) at revision ${read.revision} to ${opts.output}`);
  } else {
    process.stdout.write(text);
  }
}

export async function applyCommand(
  ctx: CtlContext,
  opts: { file: string; dryRun?: boolean; prune?: boolean; force?: boolean },
): Promise<void> {
  let text: string;
  try {
    text = readFileSync(opts.file, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read ${opts.file}: ${(error as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new UserError(`${opts.file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const wanted = fromDocument(doc);
  const unmanaged = [...wanted.keys()].filter((key) => !isManagedKey(key));
  if (unmanaged.length > 0) {
    const each = unmanaged.map((key) => `invalid key ${key}: not a managed config key`);
    throw new UserError(`${each.join('; ')}; nothing written`);
  }
  const read = await readPrefix(ctx);
  const desired = new Map<string, string | undefined>(wanted);
  if (opts.prune) {
    for (const key of read.entries.keys())
      if (isManagedKey(key) && !wanted.has(key)) desired.set(key, undefined);
  }
  const changes = planChanges(read, desired);
  const exportedAt = exportedRevision(text);
  const problems = [
    ...(exportedAt === undefined || opts.force ? [] : changedSinceExport(read, changes, exportedAt)),
    ...validateChanges(read, changes),
  ];
  if (problems.length > 0) throw new UserError(problemsMessage(ctx.prefix, problems));
  if (changes.length === 0) {
    ctx.out('no changes');
    return;
  }
  for (const c of changes) ctx.out(formatChange(c));
  if (opts.dryRun) {
    ctx.out(`dry run: ${changes.length} change(s) not applied`);
    return;
  }
  const revision = await commitChanges(ctx, read, changes);
  ctx.out(`applied ${changes.length} change(s) at revision ${revision}`);
}
