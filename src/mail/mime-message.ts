/**
 * One outgoing mail as RFC 5322 bytes: `multipart/alternative` with the text part, then the HTML
 * part. The bytes are the ones nodemailer's MailComposer builds for the same fields and boundary
 * (mime-message.test.ts compares the two on varied input), without building a MailComposer tree
 * and its chain of streams for every mail: on the 2-core bench machine about 25 µs of CPU per mail
 * instead of 340–410 µs; in alternated runs under writes the worker's CPU per write fell by
 * 0.50 ms, 28 % (bench/ROUNDS.md, twelfth round).
 *
 * Only the fixed frame is laid out here. The encoding is nodemailer's own (mime-funcs for RFC 2047
 * words and header folding, its quoted-printable and base64 encoders), and so are the choices:
 * a part with printable 7-bit characters only and no line over 76 goes as `7bit`; otherwise
 * quoted-printable when it has more Latin letters than other characters, else base64.
 *
 * The boundary is `=_sg-<outbox id>-Part_1`: "=_" never occurs in quoted-printable or base64, so
 * only a 7bit part could contain it. A retry of the same mail has the same bytes but its Date.
 * An outbox id that is not made of boundary characters goes to the fallback.
 *
 * `composeMail` falls back to MailComposer itself (random boundary) when an address is not a plain
 * `local@domain` (a display name, quotes, spaces, non-ASCII: the API's and the worker's validation
 * never let those through, but an outbox row is not trusted), when a part is empty (the templates
 * never render one) or when a 7bit part contains the boundary line.
 */

import base64 from 'nodemailer/lib/base64/index.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import mimeFuncs from 'nodemailer/lib/mime-funcs/index.js';
import qp from 'nodemailer/lib/qp/index.js';

export interface MimeFields {
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
  /** without the angle brackets */
  messageId: string;
  date: Date;
}

const BOUNDARY_PREFIX = '=_sg';
/**
 * what needs no quoting, encoding or punycode in an address header: a local part of RFC 5322
 * `atext` and dots (what the API registers, routes/schemas.ts), an ASCII host name
 */
const PLAIN_ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+$/;
const LINE = 76;
/** RFC 2046 boundary characters, without the space */
const BOUNDARY = /^[A-Za-z0-9'()+_,./:=?-]{1,70}$/;
/** typed as three parameters; the fourth (encode every word) is what MimeNode passes */
const encodeWords = mimeFuncs.encodeWords.bind(mimeFuncs) as (
  value: string,
  encoding: 'Q' | 'B',
  maxLength: number,
  encodeAll: boolean,
) => string;

/** the boundary of the mail with this outbox id (MailComposer's `<prefix>-<base>-Part_<node>`) */
export function mailBoundary(outboxId: string): string {
  return `${BOUNDARY_PREFIX}-${outboxId}-Part_1`;
}

/** MimeNode._getTextEncoding: 'Q' when Latin letters outnumber the rest that needs encoding */
function wordEncoding(value: string): 'Q' | 'B' {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are the point
  const nonLatin = value.match(/[\x00-\x08\x0B\x0C\x0E-\x1F\u0080-\uFFFF]/g)?.length ?? 0;
  const latin = value.match(/[a-z]/gi)?.length ?? 0;
  return nonLatin < latin ? 'Q' : 'B';
}

function address(value: string): string {
  const at = value.lastIndexOf('@');
  return `${value.slice(0, at)}@${value.slice(at + 1).toLowerCase()}`;
}

/**
 * one unstructured header as MimeNode writes it: line breaks to spaces, RFC 2047 words, folded;
 * none at all when the value is blank
 */
function textHeader(name: string, value: string): string[] {
  const flat = value.replace(/\r?\n|\r/g, ' ');
  const encoded = encodeWords(flat, wordEncoding(flat), 52, true);
  return encoded.trim() ? [mimeFuncs.foldLines(`${name}: ${encoded}`, LINE)] : [];
}

type TransferEncoding = '7bit' | 'quoted-printable' | 'base64';

/** MimeNode.getTransferEncoding for a string content of a text/* node */
function transferEncoding(content: string): TransferEncoding {
  if (mimeFuncs.isPlainText(content) && !mimeFuncs.hasLongerLines(content, LINE)) return '7bit';
  return wordEncoding(content) === 'Q' ? 'quoted-printable' : 'base64';
}

/**
 * base64.Encoder's output for content that arrives in one chunk: the whole 3-byte groups
 * wrapped at 76, then the last one or two bytes' four characters appended to the last line
 */
function base64Body(content: Buffer): string {
  const whole = content.length - (content.length % 3);
  return (
    base64.wrap(content.subarray(0, whole).toString('base64'), LINE) +
    content.subarray(whole).toString('base64')
  );
}

function part(type: 'plain' | 'html', content: string, encoding: TransferEncoding): string {
  const body =
    encoding === '7bit'
      ? content
      : encoding === 'quoted-printable'
        ? qp.wrap(qp.encode(content), LINE)
        : base64Body(Buffer.from(content));
  return `Content-Type: text/${type}; charset=utf-8\r\nContent-Transfer-Encoding: ${encoding}\r\n\r\n${body}`;
}

/**
 * The mail's bytes without MailComposer, or undefined when they need it (see the file comment).
 * `boundary` is normally `mailBoundary(outboxId)`.
 */
export function buildMimeMessage(f: MimeFields, boundary: string): Buffer | undefined {
  if (!PLAIN_ADDRESS.test(f.from) || !PLAIN_ADDRESS.test(f.to) || !BOUNDARY.test(boundary)) return undefined;
  // MailComposer leaves an empty part without content and transfer encoding
  if (f.text === '' || f.html === '') return undefined;
  const textEncoding = transferEncoding(f.text);
  const htmlEncoding = transferEncoding(f.html);
  const line = `--${boundary}`;
  if (
    (textEncoding === '7bit' && f.text.includes(line)) ||
    (htmlEncoding === '7bit' && f.html.includes(line))
  )
    return undefined;
  const head = [
    `From: ${address(f.from)}`,
    `To: ${address(f.to)}`,
    ...textHeader('Subject', f.subject),
    `Message-ID: <${f.messageId.replace(/\r?\n|\r/g, ' ')}>`,
    `Date: ${f.date.toUTCString().replace(/GMT/, '+0000')}`,
    'MIME-Version: 1.0',
    mimeFuncs.foldLines(`Content-Type: multipart/alternative; boundary="${boundary}"`, LINE),
  ].join('\r\n');
  return Buffer.from(
    `${head}\r\n\r\n${line}\r\n${part('plain', f.text, textEncoding)}\r\n${line}\r\n${part('html', f.html, htmlEncoding)}\r\n${line}--\r\n`,
  );
}

/** the same message from MailComposer; `boundary` parts as MimeNode takes them */
export function composeWithMailComposer(
  f: MimeFields,
  boundary?: { prefix: string; base: string },
): Promise<Buffer> {
  // boundaryPrefix and baseBoundary are MimeNode options MailComposer passes on; not in its types
  const options: ConstructorParameters<typeof MailComposer>[0] & {
    boundaryPrefix?: string;
    baseBoundary?: string;
  } = {
    from: f.from,
    to: f.to,
    subject: f.subject,
    text: f.text,
    html: f.html,
    messageId: `<${f.messageId}>`,
    date: f.date,
    ...(boundary ? { boundaryPrefix: boundary.prefix, baseBoundary: boundary.base } : {}),
  };
  return new MailComposer(options).compile().build();
}

/**
 * The mail with this outbox id: its Message-ID `<outbox id@shardgate.local>` (so a receiving system
 * can dedup too) and its boundary both come from the id. Built here, or by MailComposer when it
 * must (file comment).
 */
export function composeMail(mail: Omit<MimeFields, 'messageId'>, outboxId: string): Promise<Buffer> {
  const f = { ...mail, messageId: `${outboxId}@shardgate.local` };
  const built = buildMimeMessage(f, mailBoundary(outboxId));
  return built ? Promise.resolve(built) : composeWithMailComposer(f);
}
