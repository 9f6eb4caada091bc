/**
 * `lb weight <instanceId> <weight>`: write `lb/weights/<id>` (a whole number 0–256, digits only,
 * written in canonical form: ` 7` is 7; `007`, `7.0` and `-0` refused; 0 = drain; setting-number.ts,
 * as `breakers set`). An instance that is not registered now (no
 * `instances/<id>`: down, not started yet, or a typo) still gets its weight, with a warning on
 * stderr naming it, printed once the write is done. A 0 that would leave no registered instance
 * with a weight above 0 is refused unless `--force` (refuseLastDrain), and so is one that leaves
 * only instances that do not answer ready (drainLeavesNoReadyServer).
 * `lb unset <instanceId>`: delete the key; `lb sync` then gives the server its haproxy.cfg weight
 * again, ending a weight-0 drain. `lb weights [--json]`: every weight key in force, each instance
 * registered or not.
 */
import type { ConfigSnapshot } from '../../src/config/config-state.js';
import { INSTANCE_ID_PATTERN } from '../../src/config/schema.js';
import { alignColumns } from '../columns.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { readiness } from '../instance-readiness.js';
import { loadState, readPrefix } from '../prefix-read.js';
import { settingNumber } from '../setting-number.js';
import { stateInForce } from '../state-in-force.js';
import { writeKeys } from '../write-keys.js';

const WEIGHTS = 'lb/weights/';

interface WeightRow {
  id: string;
  /** the weight in force (a rejected key's last good value); null: none, the key holds no good value */
  weight: number | null;
  registered: boolean;
  /** why the instances reject the key's current value, and that value */
  problem?: string;
  value?: string;
}

export async function listWeights(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  const read = await readPrefix(ctx);
  // a rejected weight key counts with its last good value, as lb sync and the instances keep it
  const { snapshot: snap, rejected } = (await stateInForce(ctx, read)).state;
  const ids = new Set([
    ...snap.lbWeights.keys(),
    ...rejected.filter((r) => r.key.startsWith(WEIGHTS)).map((r) => r.key.slice(WEIGHTS.length)),
  ]);
  const rows = [...ids].sort().map((id): WeightRow => {
    const problem = rejected.find((r) => r.key === `${WEIGHTS}${id}`)?.reason;
    return {
      id,
      weight: snap.lbWeights.get(id) ?? null,
      registered: snap.instances.has(id),
      ...(problem === undefined ? {} : { problem, value: read.entries.get(`${WEIGHTS}${id}`) }),
    };
  });
  if (opts.json) return ctx.out(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return ctx.out('no weights set: every server has its haproxy.cfg weight');
  const table = rows.map((r) => [
    r.id,
    r.weight === null ? '?' : String(r.weight),
    r.registered ? 'registered' : 'not registered',
    r.problem ? `problem: ${r.problem}` : '',
  ]);
  for (const line of alignColumns(table)) ctx.out(line);
}

export async function unsetWeight(ctx: CtlContext, instanceId: string): Promise<void> {
  const key = `${WEIGHTS}${parseInstanceId(instanceId)}`;
  const after = `lb sync gives ${instanceId}'s server its haproxy.cfg weight`;
  let registered = true;
  await writeKeys(
    ctx,
    (read) => {
      registered = read.entries.has(`instances/${instanceId}`);
      return new Map([[key, undefined]]);
    },
    {
      unchanged: `${key} is not set; nothing written: ${after}`,
      changed: (changes) => [`- ${key} (was ${changes[0]!.old})`, `${after} now`],
    },
  );
  // "its server" may not exist (an outside check unset the weight of a typo): said as lb weight says it
  if (!registered) ctx.warn(notRegistered('lb unset', ctx.prefix, instanceId));
}

/**
 * the warning of lb weight|unset for an instance with no registration now: what lb sync does with
 * the weight written (weight) or deleted (unset) when the backend has no server of that name
 */
export function notRegistered(command: 'lb weight' | 'lb unset', prefix: string, instanceId: string): string {
  const effect =
    command === 'lb weight'
      ? 'HAProxy applies the weight to its server of that name (lb sync), if its backend has one: a typo of the id never applies'
      : 'lb sync gives its server of that name the haproxy.cfg weight, if its backend has one: for a typo of the id no server changes';
  return `${command}: warning: instance ${instanceId} is not registered now (no ${prefix}instances/${instanceId}); ${effect}`;
}

export async function setWeight(
  ctx: CtlContext,
  instanceId: string,
  weightText: string,
  { force = false }: { force?: boolean } = {},
): Promise<void> {
  const key = `${WEIGHTS}${parseInstanceId(instanceId)}`;
  // written as the number it is ("007", " 1 " → "7", "1"), as `breakers set` does
  const weight = settingNumber(key, weightText);
  if (!weight.ok)
    throw new UserError(`invalid ${ctx.prefix}${key}: "${clip(weightText)}" is not a whole number 0–256`);
  const registration = `instances/${instanceId}`;
  let registered = true;
  let unanswered: string | undefined;
  await writeKeys(ctx, async (read) => {
    registered = read.entries.has(registration);
    if (weight.value === 0 && !force) {
      const snap = loadState(read).snapshot;
      refuseLastDrain(snap, instanceId);
      const after = { ...snap, lbWeights: new Map(snap.lbWeights).set(instanceId, 0) };
      const drain = servingInstances(snap).includes(instanceId)
        ? await drainLeavesNoReadyServer(after, [instanceId])
        : undefined;
      if (drain?.answered)
        throw new UserError(`${drain.problem}; nothing written. Re-run with --force to drain it anyway`);
      unanswered = drain?.problem;
    }
    return new Map([[key, weight.text]]);
  });
  if (unanswered) ctx.warn(`lb weight: warning: ${unanswered}`);
  if (!registered) ctx.warn(notRegistered('lb weight', ctx.prefix, instanceId));
}

/** The instance id of `lb weight|unset`, checked before it becomes part of a key (`''` names no key). */
function parseInstanceId(instanceId: string): string {
  if (instanceId === '')
    throw new UserError(`invalid instance id "": it is empty; it must match ${INSTANCE_ID_PATTERN.source}`);
  if (!INSTANCE_ID_PATTERN.test(instanceId))
    throw new UserError(
      `invalid instance id "${clip(instanceId)}": must match ${INSTANCE_ID_PATTERN.source}`,
    );
  return instanceId;
}

/** a long text shown in a message: its first 40 characters and how long it was */
function clip(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 40)}… (${text.length} characters)`;
}

/**
 * Weight 0 for `instanceId` while it is the last registered instance HAProxy sends requests to
 * (its weight in force above 0, or none: the haproxy.cfg weight), every other one at 0: HAProxy
 * would answer every request 503. Refused; `--force` does it.
 */
function refuseLastDrain(snap: ConfigSnapshot, instanceId: string): void {
  const serving = servingInstances(snap);
  if (!serving.includes(instanceId) || serving.length > 1) return;
  throw new UserError(
    `${instanceId} is the last registered instance with a weight above 0: weight 0 leaves HAProxy no server to send requests to (every request answered 503); nothing written. Re-run with --force to drain them all`,
  );
}

/**
 * Why draining `drained` (instances serving before, weight 0 in `after`) leaves HAProxy no server
 * that serves, though registered instances with a weight above 0 stay in `after`: none of those
 * answers ready now. `answered`: at least one answered 503 (draining after SIGTERM, loading its
 * config), a refusal; none answering at all (down, hung, or its registered URL not reachable from
 * this host) is a warning. Undefined when one is ready, when nothing is drained, or when none
 * stays (refuseLastDrain's case). Before, only registration
 * counted: an outside check drained api-1 0.3 s after SIGTERM to api-2, and 24 of 60 requests
 * through HAProxy were answered 503 in the next 3.4 s.
 */
export async function drainLeavesNoReadyServer(
  after: ConfigSnapshot,
  drained: readonly string[],
): Promise<{ problem: string; answered: boolean } | undefined> {
  const staying = servingInstances(after);
  if (drained.length === 0 || staying.length === 0) return undefined;
  const urls = new Map(staying.map((id) => [id, after.instances.get(id)!.url]));
  const answers = await readiness([...urls.values()]);
  const states = staying.map((id) => [id, answers.get(urls.get(id)!)] as const);
  if (states.some(([, state]) => state === 'ready')) return undefined;
  const listed = states.map(([id, state]) => `${id}: ${state}`).join(', ');
  // none answered at all: maybe down, maybe only unreachable from this host (an instance
  // registers 127.0.0.1 when it listens on every address: compose, another container). Said,
  // not refused: the operator knows which
  const answered = states.some(([, state]) => state === 'not ready');
  return {
    answered,
    problem: answered
      ? `weight 0 for ${drained.join(', ')} leaves HAProxy no server that serves: no other instance with a weight above 0 answers ready now (${listed}), and every request would be answered 503`
      : `weight 0 for ${drained.join(', ')}: no other instance with a weight above 0 answered /health/ready from here (${listed}); if none of them serves, HAProxy answers every request 503`,
  };
}

/**
 * The registered instances HAProxy sends requests to: a weight in force above 0, or none (the
 * haproxy.cfg weight). None of them is a HAProxy that answers every request 503.
 */
export function servingInstances(snap: ConfigSnapshot): string[] {
  return [...snap.instances.keys()].filter((id) => snap.lbWeights.get(id) !== 0);
}
