/**
 * A raw etcd value read without the schema, for code that must say something about an entry the
 * schema rejects (the instances keep routing a tenant whose entry is invalid by its last good
 * value): which shard, status or name it names, if any. Never a verdict on validity — that is
 * parseConfigKey's. Never throws: a value that is not JSON, or JSON that is not an object
 * (`null`, an array, a number, a string), is undefined; a field of another type is left out.
 */

/** The raw value as a JSON object (every field as written); undefined when it is none. */
export function looseEntry(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** The text fields of a `tenants/<id>` value; the entry's rules are the schema's (tenantSchema). */
export interface LooseTenantEntry {
  shard?: string;
  status?: string;
  name?: string;
}

const TENANT_FIELDS = ['shard', 'status', 'name'] as const;

/**
 * The shard, status and name a raw `tenants/<id>` value names, each only where it is a string;
 * undefined when the value is absent or not a JSON object (see the top of this file).
 */
export function looseTenantEntry(raw: string | undefined): LooseTenantEntry | undefined {
  const entry = looseEntry(raw);
  if (!entry) return undefined;
  const loose: LooseTenantEntry = {};
  for (const field of TENANT_FIELDS) {
    const value = entry[field];
    if (typeof value === 'string') loose[field] = value;
  }
  return loose;
}
