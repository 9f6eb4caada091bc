/**
 * The local stack's SMTP sink (:2525): accepts every message (no auth, no TLS) and writes each as
 * one `.eml` file into `.stack/mail/`, atomically (temp file, then rename), so a reader never sees
 * half a message. Messages over 1 MiB are refused. Runs as its own process so tests can stop it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { MAIL_DIR } from './paths.js';
import { topology } from './topology.js';

const dir = process.env.SHARDGATE_MAIL_DIR ?? MAIL_DIR;
const port = Number(process.env.SHARDGATE_SMTP_PORT ?? topology.smtp.port);
mkdirSync(dir, { recursive: true });

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  size: 1024 * 1024,
  logger: false,
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
        const err = new Error('message exceeds 1 MiB') as Error & { responseCode: number };
        err.responseCode = 552;
        return callback(err);
      }
      const name = `${Date.now()}-${randomBytes(6).toString('hex')}.eml`;
      const tmp = join(dir, `.${name}.tmp`);
      writeFileSync(tmp, Buffer.concat(chunks));
      renameSync(tmp, join(dir, name));
      callback();
    });
  },
});
server.on('error', (e) => console.error(`smtp-sink: ${e.message}`));
server.listen(port, topology.host, () =>
  console.log(`smtp-sink listening on ${topology.host}:${port}, writing to ${dir}`),
);
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => server.close(() => process.exit(0)));
