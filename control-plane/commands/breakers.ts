/** `breakers get [kind]` (settings in force per kind, with where each comes from) and `breakers set`. */
import { BREAKER_KINDS, BREAKER_SETTINGS, parseConfigKey } from '../../src/config/schema.js';
import { loadState, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { writeKeys } from '../write-keys.js';

export async function getBreakers(ctx: CtlContext, kind: string | undefined, opts: { json?: boolean }) {
  if (kind && !(BREAKER_KINDS as readonly string[]).includes(kind)) {
    throw new UserError(`unknown breaker kind "${kind}": one of ${BREAKER_KINDS.join(', ')}`);
  }
  const read = await readPrefix(ctx);
  const s = loadState(read);
  const kinds = kind ? [kind as (typeof BREAKER_KINDS)[number]] : [...BREAKER_KINDS];
  const view = Object.fromEntries(
    kinds.map((k) => [
      k,
      Object.fromEntries(
        BREAKER_SETTINGS.map((setting) => {
          const source = read.entries.has(`breakers/${k}/${setting}`)
            ? k
            : read.entries.has(`breakers/default/${setting}`)
              ? 'default'
              : 'built-in';
          return [setting, { value: s.snapshot.breakers[k][setting], source }];
        }),
      ),
    ]),
  );
  if (opts.json) return ctx.out(JSON.stringify(view, null, 2));
  for (const [k, settings] of Object.entries(view)) {
    ctx.out(k);
    for (const [setting, v] of Object.entries(settings))
      ctx.out(`  ${setting.padEnd(20)} ${String(v.value).padEnd(8)} (${v.source})`);
  }
}

export async function setBreaker(
  ctx: CtlContext,
  kind: string,
  setting: string,
  value: string,
): Promise<void> {
  const key = `breakers/${kind}/${setting}`;
  const r = parseConfigKey(key, value);
  if (!r.ok) throw new UserError(`invalid ${ctx.prefix}${key}: ${r.reason}`);
  await writeKeys(ctx, () => new Map([[key, value.trim()]]));
}
