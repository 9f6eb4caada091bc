/**
 * The local stack's SMTP sink (:2525): accepts every message (no auth, no TLS) and writes each as
 * one `.eml` file into `.stack/mail/`, atomically (temp file, then rename), so a reader never sees
 * half a message. Messages over 1 MiB are refused. Runs as its own process so tests can stop it.
 *
 * A recipient listed in `<mail dir>/.refuse` (one address per line, re-read every 250 ms) is
 * refused at RCPT TO with `550 5.1.1`, as a real server refuses a mailbox that does not exist:
 * tests use it to have a mail dead-lettered for real, then fix the "mailbox" and redrive it.
 * A recipient listed in `<mail dir>/.later` is refused with `451 4.3.0` instead, a transient
 * refusal: its mail is retried as in an outage, without using its attempts, until taken off.
 * A recipient listed in `<mail dir>/.slow` (`address milliseconds` per line, re-read likewise)
 * has its mail stored at once but the final dot answered that much later, as a server that has
 * taken the mail and is slow to say so: tests use it to show the worker does not send it twice.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { MAIL_DIR } from './paths.js';
import { topology } from './topology.js';

const dir = process.env.SHARDGATE_MAIL_DIR ?? MAIL_DIR;
const port = Number(process.env.SHARDGATE_SMTP_PORT ?? topology.smtp.port);
/** loopback locally; a container sets 0.0.0.0 so the worker's container can reach it */
const host = process.env.SHARDGATE_SMTP_HOST ?? topology.host;
mkdirSync(dir, { recursive: true });

/** the non-blank lines of `<mail dir>/<name>`, lower-cased; none when it does not exist */
function listLines(name: string): string[] {
  try {
    return readFileSync(join(dir, name), 'utf8')
      .split('\n')
      .map((l) => l.trim().toLowerCase())
      .filter(Boolean);
  } catch {
    return [];
  }
}
let refused = new Set<string>();
let later = new Set<string>();
/** recipient → ms the answer to the final dot is held back */
let slow = new Map<string, number>();
function loadLists(): void {
  refused = new Set(listLines('.refuse'));
  later = new Set(listLines('.later'));
  slow = new Map(
    listLines('.slow').map((l) => {
      const [address = '', ms = '0'] = l.split(/\s+/);
      return [address, Math.min(Number(ms) || 0, 600_000)];
    }),
  );
}
loadLists();
// a timer, not a read per recipient: the sink's cost per mail stays what the benchmarks measured
setInterval(loadLists, 250).unref();

function smtpError(responseCode: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode });
}

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  size: 1024 * 1024,
  logger: false,
  // no reverse DNS lookup of each client (about 100 ms before the greeting on this machine)
  disableReverseLookup: true,
  // on SIGTERM, connections still open after 1 s are dropped (a sender retries; `down` waits 10 s)
  closeTimeout: 1000,
  onRcptTo(address, _session, callback) {
    if (refused.has(address.address.toLowerCase()))
      return callback(smtpError(550, "5.1.1 mailbox unavailable (listed in the sink's .refuse)"));
    if (later.has(address.address.toLowerCase()))
      return callback(smtpError(451, "4.3.0 try again later (listed in the sink's .later)"));
    callback();
  },
  onData(stream, session, callback) {
    const exceeded = () => (stream as unknown as { sizeExceeded?: boolean }).sizeExceeded === true;
    const chunks: Buffer[] = [];
    // past the limit the rest is read and dropped: the reply comes after the whole DATA
    stream.on('data', (c: Buffer) => {
      if (!exceeded()) chunks.push(c);
    });
    stream.on('end', () => {
      if (exceeded()) return callback(smtpError(552, 'message exceeds 1 MiB'));
      const name = `${Date.now()}-${randomBytes(6).toString('hex')}.eml`;
      const tmp = join(dir, `.${name}.tmp`);
      try {
        writeFileSync(tmp, Buffer.concat(chunks));
        renameSync(tmp, join(dir, name));
      } catch (error) {
        // disk full or the directory gone: a temporary failure, the sender retries later
        console.error(`smtp-sink: cannot store ${name}: ${(error as Error).message}`);
        return callback(smtpError(451, 'cannot store the message now'));
      }
      const hold = Math.max(0, ...session.envelope.rcptTo.map((r) => slow.get(r.address.toLowerCase()) ?? 0));
      if (hold > 0) setTimeout(() => callback(), hold);
      else callback();
    });
  },
});
server.on('error', (e) => console.error(`smtp-sink: ${e.message}`));
server.listen(port, host, () => console.log(`smtp-sink listening on ${host}:${port}, writing to ${dir}`));
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)));
