/**
 * An `etcdctl put` command line an error message suggests, safe to paste into a POSIX shell:
 * the key and value single-quoted, a `'` inside written `'\''` (a review: a tenant name with an
 * apostrophe made the suggested line a broken command). The key is left bare when it needs no
 * quotes, as etcd keys usually do.
 */
export function etcdctlPut(key: string, value: string): string {
  return `etcdctl put ${/^[\w./:-]+$/.test(key) ? key : shellQuoted(key)} ${shellQuoted(value)}`;
}

function shellQuoted(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
