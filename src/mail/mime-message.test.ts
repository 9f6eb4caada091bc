/**
 * buildMimeMessage against the library it stands in for: for the same fields, boundary and date,
 * its bytes must equal MailComposer's, on the mails the templates render and on random text.
 */
import { describe, expect, it } from 'vitest';
import { renderMail } from './mail-templates.js';
import {
  buildMimeMessage,
  composeMail,
  composeWithMailComposer,
  type MimeFields,
  mailBoundary,
} from './mime-message.js';

const OUTBOX_ID = '01KB2Z8W3Q5H7J9K1M3N5P7R9T';
const date = new Date('2026-11-30T23:59:58.123Z');

async function both(f: MimeFields): Promise<{ built: string | undefined; library: string }> {
  const built = buildMimeMessage(f, mailBoundary(f.messageId.split('@')[0]!));
  const library = await composeWithMailComposer(f, { prefix: '=_sg', base: f.messageId.split('@')[0]! });
  return { built: built?.toString('utf8'), library: library.toString('utf8') };
}

const fields = (over: Partial<MimeFields>): MimeFields => ({
  from: 'no-reply@shardgate.local',
  to: 'ada@example.org',
  subject: 'Welcome to Lib',
  text: 'Hello Ada,\n\nyour membership is ready.\n',
  html: '<p>Hello Ada</p>',
  messageId: `${OUTBOX_ID}@shardgate.local`,
  date,
  ...over,
});

/** what composeMail takes: the Message-ID comes from the outbox id */
const withoutId = (over: Partial<MimeFields>): Omit<MimeFields, 'messageId'> => {
  const { messageId: _, ...rest } = fields(over);
  return rest;
};

/** a small deterministic generator (the cases must be the same on every run) */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const alphabets = [
  'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789',
  ' .,;:!?"\'()<>&=-_/\\\t',
  '\n\n\r\n.',
  'éèàüößçñ—–…€£',
  '图书馆借阅归还书籍读者',
  '😀📚',
];

function randomText(next: () => number, max: number): string {
  const n = Math.floor(next() * max);
  const weights = alphabets.map(() => next());
  let out = '';
  for (let i = 0; i < n; i++) {
    let pick = next() * weights.reduce((a, b) => a + b, 0);
    let k = 0;
    while (pick > weights[k]! && k < weights.length - 1) pick -= weights[k++]!;
    const chars = [...alphabets[k]!];
    out += chars[Math.floor(next() * chars.length)];
  }
  return out;
}

describe('buildMimeMessage', () => {
  it('builds the bytes MailComposer builds for every kind of mail the templates render', async () => {
    const payloads = [
      { tenantName: 'Riverside Library', name: 'Ada Lovelace' },
      { tenantName: 'Bibliothèque de Genève — Centre', name: 'Zoë Ørsted' },
      { tenantName: '市立图书馆', name: '李雷' },
      { tenantName: 'A "quoted" <b>library</b> & co', name: "O'Brien" },
      { tenantName: 'x'.repeat(200), name: 'y'.repeat(200) },
    ];
    let compared = 0;
    for (const base of payloads) {
      const extra = {
        changedAt: '2026-11-30T12:00:00.000Z',
        borrowedAt: '2026-11-30T12:00:00.000Z',
        returnedAt: '2026-12-01T08:00:00.000Z',
        title: base.name.length > 100 ? 'z'.repeat(200) : `The ${base.tenantName} Book\nsecond line`,
        author: 'An Author',
      };
      for (const kind of ['welcome', 'password_changed', 'loan_receipt', 'return_receipt']) {
        const mail = renderMail(kind, { ...base, ...extra });
        const { built, library } = await both(fields(mail));
        expect(built).toBeDefined();
        expect(built).toBe(library);
        compared++;
      }
    }
    expect(compared).toBe(20);
  });

  it('builds the same bytes as MailComposer on random text of every script, with line breaks and dots', async () => {
    const next = random(20261130);
    const encodings = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const f = fields({
        subject: randomText(next, 120),
        text: `${randomText(next, 600)}.`,
        html: randomText(next, 600) || '<p></p>',
        to: next() < 0.3 ? 'Mixed.Case+tag@Example.ORG' : `m${i}@example.org`,
      });
      const { built, library } = await both(f);
      expect(built, `case ${i}: ${JSON.stringify(f)}`).toBe(library);
      for (const m of built!.matchAll(/Content-Transfer-Encoding: (\S+)/g)) encodings.add(m[1]!);
    }
    // the cases reached each of the three transfer encodings
    expect([...encodings].sort()).toEqual(['7bit', 'base64', 'quoted-printable']);
  });

  it('builds the same bytes as MailComposer for a local part of every RFC 5322 atext character', async () => {
    // what the API registers since a local part may hold them (routes/schemas.ts)
    for (const to of [
      "o'neil&co=x/y~z{w}|a#b$c%d!e?f^g*h`i@Example.org",
      '=?utf-8?q?x?=@example.org',
      'a.b-c_d+e@example.org',
      '{x}@example.org',
    ]) {
      const { built, library } = await both(fields({ to }));
      expect(built, to).toBe(library);
      expect(built).toContain(`\r\nTo: ${to.replace('Example', 'example')}\r\n`);
    }
  });

  it('leaves to MailComposer what is not a plain address, and a 7bit part that holds the boundary', async () => {
    expect(
      buildMimeMessage(fields({ to: 'Ada <ada@example.org>' }), mailBoundary(OUTBOX_ID)),
    ).toBeUndefined();
    expect(buildMimeMessage(fields({ to: 'ada@exämple.org' }), mailBoundary(OUTBOX_ID))).toBeUndefined();
    expect(buildMimeMessage(fields({ from: '"No Reply" <x@y.z>' }), mailBoundary(OUTBOX_ID))).toBeUndefined();
    expect(
      buildMimeMessage(fields({ to: 'a@b.org\r\nBcc: c@d.org' }), mailBoundary(OUTBOX_ID)),
    ).toBeUndefined();
    expect(buildMimeMessage(fields({ html: '' }), mailBoundary(OUTBOX_ID))).toBeUndefined();
    expect(buildMimeMessage(fields({}), mailBoundary('a"b'))).toBeUndefined();
    const trap = `hello\n--${mailBoundary(OUTBOX_ID)}\nContent-Type: text/plain\n\nforged`;
    expect(buildMimeMessage(fields({ text: trap }), mailBoundary(OUTBOX_ID))).toBeUndefined();

    // composeMail still sends those, with a random boundary the content cannot hold
    const viaLibrary = (await composeMail(withoutId({ text: trap }), OUTBOX_ID)).toString();
    expect(viaLibrary).toContain('forged');
    const boundary = /boundary="([^"]+)"/.exec(viaLibrary)?.[1];
    expect(boundary).toBeDefined();
    expect(boundary).not.toBe(mailBoundary(OUTBOX_ID));
    expect(viaLibrary.split(`--${boundary}`)).toHaveLength(4); // before, 2 parts, the closing one
    const named = (await composeMail(withoutId({ to: 'Ada <ada@example.org>' }), OUTBOX_ID)).toString();
    expect(named).toMatch(/^To: Ada <ada@example\.org>$/m);
  });

  it('names the outbox id in the Message-ID and the boundary, so a retry carries the same bytes but its Date', async () => {
    const first = (await composeMail(withoutId({}), OUTBOX_ID)).toString();
    const again = (
      await composeMail(withoutId({ date: new Date(date.getTime() + 60_000) }), OUTBOX_ID)
    ).toString();
    expect(first).toContain(`boundary="${mailBoundary(OUTBOX_ID)}"`);
    expect(first).toMatch(new RegExp(`^Message-ID: <${OUTBOX_ID}@shardgate\\.local>\r$`, 'm'));
    const withoutDate = (s: string) => s.replace(/^Date: .*$/m, '');
    expect(withoutDate(again)).toBe(withoutDate(first));
    expect(again).not.toBe(first);
  });
});
