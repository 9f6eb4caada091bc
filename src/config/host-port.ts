/**
 * `host:port` as operators write it and as every message shows it: an IPv6 address in brackets
 * (`[::1]:3306`), since its own colons would make the port ambiguous. etcd's shard values hold
 * the bare host (`"host":"::1"`), which is what the driver connects to.
 */

/** `host:port`, an IPv6 address (a host with a colon) in brackets */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/;

/** `host:port` or `[v6]:port` → its parts (the brackets dropped); undefined when it is neither */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(text);
  return m ? { host: (m[1] ?? m[2])!, port: Number(m[3]) } : undefined;
}
