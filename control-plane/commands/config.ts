/**
 * `config export [-o file] [--json]` and `config apply -f file [--dry-run] [--prune] [--force]`.
 * Apply validates everything first, prints a diff, and writes in one guarded transaction. A file
 * with an export revision N (the YAML header `# shardgate config, etcd revision N`, or the
 * `$etcdRevision` field of a JSON export) is also refused where it would change a key that changed
 * in etcd after revision N (someone's later edit), unless --force. A file with no export revision
 * cannot be checked so: it is applied, with one warning line on stderr saying so (none with
 * --force, which asks for no such check). Keys absent from the file are left alone unless --prune
 * (then managed keys not in the file are deleted; `instances/` is never touched).
 */
import { parse, stringify } from 'yaml';
import { fromDocument, toDocument } from '../config-document.js';
import {
  changedSinceExport,
  commitChanges,
  EXPORT_HEADER,
  formatChange,
  isManagedKey,
  loadState,
  planChanges,
  problemsMessage,
  REVISION_FIELD,
  readPrefix,
  splitExportRevision,
  validateChanges,
} from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { readTextFile, writeTextFile } from '../text-file.js';

export async function exportCommand(
  ctx: CtlContext,
  opts: { output?: string; json?: boolean },
): Promise<void> {
  const read = await readPrefix(ctx);
  const managed = new Map([...read.entries].filter(([k]) => isManagedKey(k)));
  const doc = toDocument(managed);
  const text = opts.json
    ? `${JSON.stringify({ [REVISION_FIELD]: read.revision, ...doc }, null, 2)}\n`
    : `${EXPORT_HEADER}${read.revision}\n${stringify(doc)}`;
  if (opts.output) {
    writeTextFile(opts.output, text);
    ctx.out(`wrote ${managed.size} key(s) at revision ${read.revision} to ${opts.output}`);
  } else {
    process.stdout.write(text);
  }
}

export async function applyCommand(
  ctx: CtlContext,
  opts: { file: string; dryRun?: boolean; prune?: boolean; force?: boolean },
): Promise<void> {
  const text = readTextFile(opts.file);
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new UserError(`${opts.file} is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const { revision: exportedAt, doc } = splitExportRevision(text, parsed);
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
  const problems = [
    ...(exportedAt === undefined || opts.force ? [] : changedSinceExport(read, changes, exportedAt)),
    ...validateChanges(read, changes),
  ];
  if (problems.length > 0) throw new UserError(problemsMessage(ctx.prefix, problems));
  // only once nothing can refuse any more: a refused command has its one error line and no other
  const warnUnchecked = () => {
    if (exportedAt !== undefined || opts.force) return;
    ctx.warn(
      `config apply: warning: ${opts.file} names no export revision (no "${EXPORT_HEADER}N" first line, no "${REVISION_FIELD}"), so an edit made in etcd since it was written cannot be detected`,
    );
  };
  // keys the instances reject now and this apply leaves as they are: "no changes" must not read
  // as "all is well" (an export copies a rejected value as it is)
  const changed = new Set(changes.map((c) => c.key));
  const stillRejected = loadState(read).rejected.filter(
    (r) => !changed.has(r.key) && isManagedKey(r.key) && wanted.has(r.key),
  );
  const warnRejected = () => {
    if (stillRejected.length === 0) return;
    ctx.warn(
      `config apply: warning: ${stillRejected.length} key(s) of ${opts.file} stay rejected by the instances, unchanged: ${stillRejected
        .map((r) => `${ctx.prefix}${r.key} (${r.reason})`)
        .join('; ')}`,
    );
  };
  if (changes.length === 0) {
    warnUnchecked();
    warnRejected();
    ctx.out('no changes');
    return;
  }
  if (opts.dryRun) {
    warnUnchecked();
    warnRejected();
    for (const c of changes) ctx.out(formatChange(c));
    ctx.out(`dry run: ${changes.length} change(s) not applied`);
    return;
  }
  const revision = await commitChanges(ctx, read, changes);
  warnUnchecked();
  warnRejected();
  for (const c of changes) ctx.out(formatChange(c));
  ctx.out(`applied ${changes.length} change(s) at revision ${revision}`);
}
