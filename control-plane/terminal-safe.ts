/**
 * The last guard of everything shardgate-ctl prints: a raw character a terminal acts on (C0
 * controls but tab and newline, DEL, C1: ESC starts a colour, a cursor move, a title change) or
 * that reorders or splits what it shows (U+2028, U+2029, the bidi controls and marks) is written
 * as `\uXXXX`. Keys and values read from etcd are the operator's data, and anyone who may write
 * etcd can put such bytes in a tenant id or a value; the commands quote them, this makes sure
 * the terminal never runs them.
 *
 * `\uXXXX` is a JSON escape, and one of YAML's double-quoted scalars: inside a `--json` document
 * (JSON.stringify leaves DEL, C1, U+2028/2029 and bidi raw) or `config export` (the YAML
 * library quotes non-printable characters) it keeps the value as it was. Commands that escape
 * more for a text line of their own (`printableName`, `mail`'s `printable`) do so before this.
 */
/** one such character (also what `config export` double-quotes and `--name` refuses) */
export const TERMINAL_RAW = /[\p{Cc}\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;
const RAW = new RegExp(TERMINAL_RAW.source, 'gu');

export function terminalSafe(text: string): string {
  return text.replace(RAW, (c) =>
    c === '\n' || c === '\t' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A value inside one line of a text listing (a tenant id, a key, a reason): `terminalSafe`, and a
 * newline or tab as `\u000a` / `\u0009` too. An id read from etcd may hold a newline (`etcdctl
 * put` takes any key), and left raw it printed a forged row that `awk` matched as a tenant (an
 * outside check).
 */
export function oneLine(text: string): string {
  return terminalSafe(text).replace(/[\n\t]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** at most this many characters of an operator's value in a listing (`clipped`) */
export const SHOWN_CHARS = 300;

/**
 * `text` cut to `max` characters, saying how long it was: a rejected value can be as long as
 * etcd takes (an outside check: a 1 MB tenant name printed a 1,000,316-byte line in `tenants
 * list`, 2 MB in `tenants show`). For display only; `etcdctl get` gives the whole value.
 */
export function clipped(text: string, max = SHOWN_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}
