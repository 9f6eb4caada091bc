/**
 * `breakers get [kind]` (settings in force, with where each comes from), `breakers set` and
 * `breakers unset` (delete one `breakers/<kind>/<setting>` key).
 *
 * A kind's setting in force is its own key, else `breakers/default/<setting>`, else the built-in
 * default (a key the schema rejects counts as absent, as for an instance loading it fresh). So
 * unsetting a kind's key makes it follow `default`, and unsetting a `default` key makes every kind
 * without its own key follow the built-in default: both are allowed, and the output says which
 * value applies now.
 */
import {
  BREAKER_KINDS,
  BREAKER_SETTINGS,
  type BreakerKind,
  type BreakerSettingName,
  DEFAULT_BREAKER_SETTINGS,
  parseConfigKey,
} from '../../src/config/schema.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { instanceConfigs } from '../instance-rejections.js';
import { type PrefixRead, readPrefix } from '../prefix-read.js';
import { settingNumber } from '../setting-number.js';
import { stateInForce } from '../state-in-force.js';
import { writeKeys } from '../write-keys.js';

type Scope = 'default' | BreakerKind;
const SCOPES: readonly Scope[] = ['default', ...BREAKER_KINDS];

function parseScope(kind: string): Scope {
  const scope = SCOPES.find((s) => s === kind);
  if (!scope) throw new UserError(`unknown breaker kind "${kind}": one of ${SCOPES.join(', ')}`);
  return scope;
}

function parseSetting(setting: string): BreakerSettingName {
  const name = BREAKER_SETTINGS.find((s) => s === setting);
  if (!name)
    throw new UserError(`unknown breaker setting "${setting}": one of ${BREAKER_SETTINGS.join(', ')}`);
  return name;
}

interface InForce {
  value: number;
  /** the scope whose key gives the value, or `built-in` */
  source: Scope | 'built-in';
  /** the source key's value in etcd now, which the instances reject (`value` is its last good one) */
  rejected?: string;
  /**
   * a more specific key etcd holds that the instances reject, with no good value in etcd's
   * history (never one, or compacted away): it counts as absent for an instance that starts, so
   * `value` comes from further down the chain
   */
  ignored?: { key: string; value: string };
  /**
   * with `ignored`: what the registered instances enforce, each value with the instances that do
   * (from their /health/config). They kept the value they had when the key went bad, which etcd
   * no longer holds; `value` is what an instance started now would use
   */
  enforced?: { value: number; by: string[] }[];
}

/** The value of `setting` in force for `scope` in `read` (see the top of this file). */
function inForce(read: PrefixRead, scope: Scope, setting: BreakerSettingName): InForce {
  for (const source of scope === 'default' ? (['default'] as const) : [scope, 'default' as const]) {
    const key = `breakers/${source}/${setting}`;
    const raw = read.entries.get(key);
    const r = raw === undefined ? undefined : parseConfigKey(key, raw);
    if (r?.ok && r.parsed.type === 'breaker') return { value: r.parsed.value, source };
  }
  return { value: DEFAULT_BREAKER_SETTINGS[setting], source: 'built-in' };
}

/**
 * The first key of `scope`'s chain before `source` that etcd holds but the schema rejects (no
 * last good value either, or it would be the source): what an operator put there is not in force.
 */
function rejectedAbove(
  read: PrefixRead,
  scope: Scope,
  source: InForce['source'],
  setting: BreakerSettingName,
): InForce['ignored'] {
  const chain: Scope[] = scope === 'default' ? ['default'] : [scope, 'default'];
  for (const s of chain) {
    if (s === source) return undefined;
    const key = `breakers/${s}/${setting}`;
    const raw = read.entries.get(key);
    if (raw !== undefined && !parseConfigKey(key, raw).ok) return { key, value: raw };
  }
  return undefined;
}

const describeSource = (f: InForce, setting: string) =>
  f.source === 'built-in' ? 'the built-in default' : `breakers/${f.source}/${setting}`;

/**
 * The settings the instances enforce: a key etcd holds but the schema rejects counts with its last
 * good value from etcd's history, as the instances keep it (state-in-force.ts), marked so.
 */
export async function getBreakers(ctx: CtlContext, kind: string | undefined, opts: { json?: boolean }) {
  const scopes = kind ? [parseScope(kind)] : [...BREAKER_KINDS];
  const read = await readPrefix(ctx);
  const { entries, restored, state } = await stateInForce(ctx, read);
  const effective = { ...read, entries };
  const setting = (scope: Scope, name: BreakerSettingName): InForce => {
    const f = inForce(effective, scope, name);
    const key = `breakers/${f.source}/${name}`;
    const ignored = rejectedAbove(read, scope, f.source, name);
    const shown = ignored ? { ...f, ignored } : f;
    return restored.has(key) ? { ...shown, rejected: read.entries.get(key) } : shown;
  };
  const view: Record<string, Record<string, InForce>> = Object.fromEntries(
    scopes.map((scope) => [
      scope,
      Object.fromEntries(BREAKER_SETTINGS.map((name) => [name, setting(scope, name)])),
    ]),
  );
  await addEnforced(
    view,
    [...state.snapshot.instances].map(([id, i]) => ({ id, url: i.url })),
  );
  if (opts.json) return ctx.out(JSON.stringify(view, null, 2));
  for (const [scope, settings] of Object.entries(view)) {
    ctx.out(scope);
    for (const [name, v] of Object.entries(settings)) {
      const notes = [
        v.ignored &&
          `etcd holds ${JSON.stringify(v.ignored.value.slice(0, 40))} at ${v.ignored.key}, which the instances reject, with no good value left in etcd's history`,
        v.rejected !== undefined &&
          `its last good value: etcd holds ${JSON.stringify(v.rejected.slice(0, 40))}, which the instances reject`,
        v.enforced &&
          (v.enforced.length === 0
            ? 'no registered instance says what it enforces'
            : `the running instances enforce ${v.enforced.map((e) => `${e.value} (${e.by.join(', ')})`).join(', ')}, kept from before; an instance started now would use ${v.value}`),
      ].filter(Boolean);
      const note = notes.map((n) => `; ${n}`).join('');
      // in force is what the running instances enforce, when they all say the same
      const shown = v.enforced?.length === 1 ? v.enforced[0]!.value : v.value;
      ctx.out(`  ${name.padEnd(20)} ${String(shown).padEnd(8)} (${v.source}${note})`);
    }
  }
}

/**
 * For each setting whose more specific key is rejected with no good value left in etcd's history
 * (`ignored`), what the registered instances enforce: the value they kept (applied-differences.ts).
 * Asks the instances only then; a `default` scope has no value of its own in an instance.
 */
async function addEnforced(
  view: Record<string, Record<string, InForce>>,
  instances: { id: string; url: string }[],
): Promise<void> {
  const wanted = Object.entries(view).flatMap(([scope, settings]) =>
    scope === 'default'
      ? []
      : Object.entries(settings)
          .filter(([, v]) => v.ignored)
          .map(([name, v]) => ({ scope, name, v })),
  );
  if (wanted.length === 0) return;
  const configs = await instanceConfigs(instances.map((i) => i.url));
  for (const { scope, name, v } of wanted) {
    const by = new Map<number, string[]>();
    for (const { id, url } of instances) {
      const breakers = configs.get(url)?.applied?.breakers as
        | Record<string, Record<string, unknown>>
        | undefined;
      const value = breakers?.[scope]?.[name];
      if (typeof value === 'number') by.set(value, [...(by.get(value) ?? []), id]);
    }
    v.enforced = [...by].map(([value, ids]) => ({ value, by: ids }));
  }
}

export async function setBreaker(
  ctx: CtlContext,
  kind: string,
  setting: string,
  value: string,
): Promise<void> {
  const key = `breakers/${kind}/${setting}`;
  // digits only, written in canonical form (" 7" → "7"; "007" and "7.0" refused), as
  // `lb weight` does; a value that says the same as etcd's (7 beside a stored "7.0") writes nothing
  const r = settingNumber(key, value);
  if (!r.ok) throw new UserError(`invalid ${ctx.prefix}${key}: ${r.reason}`);
  await writeKeys(ctx, () => new Map([[key, r.text]]));
}

/** Delete the single key `breakers/<kind>/<setting>`; absent already is no error (nothing written). */
export async function unsetBreaker(ctx: CtlContext, kind: string, setting: string): Promise<void> {
  const scope = parseScope(kind);
  const name = parseSetting(setting);
  const key = `breakers/${scope}/${name}`;
  let after: InForce | undefined;
  const applies = (now: string) =>
    scope === 'default'
      ? `kinds without their own ${name} ${now}follow the built-in default (${DEFAULT_BREAKER_SETTINGS[name]})`
      : `${scope} ${name} ${now}follows ${describeSource(after!, name)} (${after!.value})`;
  await writeKeys(
    ctx,
    (read) => {
      const rest = new Map(read.entries);
      rest.delete(key);
      after = inForce({ ...read, entries: rest }, scope, name);
      return new Map([[key, undefined]]);
    },
    {
      // either way, say which value applies now
      unchanged: () => `${key} is not set; nothing written: ${applies('')}`,
      changed: (changes) => [`- ${key} (was ${changes[0]!.old})`, applies('now ')],
    },
  );
}
