/**
 * The SMTP sink's mailbox (`.stack/mail/`, one `.eml` per message) as tests see it: who got
 * what, when the file appeared.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MAIL_DIR } from '../../stack/paths.js';

export interface Mail {
  file: string;
  to: string;
  subject: string;
  messageId: string;
  /** file mtime, ms */
  at: number;
}

const seen = new Map<string, Mail>();

function header(text: string, name: string): string {
  const m = new RegExp(`^${name}: (.*)$`, 'mi').exec(text);
  return m?.[1]?.trim() ?? '';
}

/** Every mail in the sink (cached by file name; files are written atomically and never change). */
export function mailbox(): Mail[] {
  for (const file of readdirSync(MAIL_DIR)) {
    if (!file.endsWith('.eml') || seen.has(file)) continue;
    const path = join(MAIL_DIR, file);
    const text = readFileSync(path, 'utf8');
    seen.set(file, {
      file,
      to: header(text, 'To'),
      subject: header(text, 'Subject'),
      messageId: header(text, 'Message-ID'),
      at: statSync(path).mtimeMs,
    });
  }
  return [...seen.values()];
}

export function mailsTo(addresses: Set<string> | string): Mail[] {
  const set = typeof addresses === 'string' ? new Set([addresses]) : addresses;
  return mailbox().filter((m) => set.has(m.to));
}

/** recipients that got more than one mail with `subjectPrefix` */
export function doubled(mails: Mail[]): string[] {
  const counts = new Map<string, number>();
  for (const m of mails) counts.set(m.to, (counts.get(m.to) ?? 0) + 1);
  return [...counts].filter(([, n]) => n > 1).map(([to]) => to);
}
