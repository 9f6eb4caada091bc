import { describe, expect, it } from 'vitest';
import { decodeMailMessage, encodeMailMessage } from './mail-message.js';
import { InvalidMailError, renderMail } from './mail-templates.js';
import { RETRY_DELAYS_MS, retryDelayMs, retryQueueName, retryRoutingKey } from './retry-tiers.js';

describe('mail templates', () => {
  it('names the library in text and HTML and escapes everything in HTML', () => {
    const m = renderMail('welcome', { tenantName: 'Acme <Library>', name: 'Bob "&" Co' });
    expect(m.subject).toBe('Welcome to Acme <Library>');
    expect(m.text).toContain('— Acme <Library>');
    expect(m.html).toContain('Acme &lt;Library&gt;');
    expect(m.html).toContain('Bob &quot;&amp;&quot; Co');
    expect(m.html).not.toContain('<Library>');
  });

  it('renders all four kinds', () => {
    const base = { tenantName: 'Lib', name: 'Ann' };
    expect(renderMail('password_changed', { ...base, changedAt: '2026-01-01T00:00:00Z' }).subject).toContain(
      'password',
    );
    expect(
      renderMail('loan_receipt', { ...base, title: 'Dune', author: 'Herbert', borrowedAt: 'x' }).subject,
    ).toBe('You borrowed "Dune" by Herbert');
    expect(
      renderMail('return_receipt', { ...base, title: null, author: null, borrowedAt: 'x', returnedAt: 'y' })
        .subject,
    ).toBe('You returned your book');
  });

  it('refuses unknown kinds and incomplete payloads (poison)', () => {
    expect(() => renderMail('nope', {})).toThrow(InvalidMailError);
    expect(() => renderMail('welcome', { tenantName: 'x' })).toThrow(InvalidMailError);
  });
});

describe('retry tiers and messages', () => {
  it('doubles the delay per attempt up to 64 s', () => {
    expect([1, 2, 3, 7, 12].map(retryDelayMs)).toEqual([1000, 2000, 4000, 64_000, 64_000]);
    expect(RETRY_DELAYS_MS.map(retryQueueName)[0]).toBe('shardgate.mail.delay.1s');
    expect(RETRY_DELAYS_MS.map(retryRoutingKey)[0]).toBe('shardgate.mail.retry.1s');
  });

  it('round-trips a message and rejects garbage', () => {
    const m = {
      outboxId: 'o1',
      shardId: 's',
      tenantId: 't',
      kind: 'welcome',
      recipient: 'a@b.c',
      payload: { a: 1 },
    };
    expect(decodeMailMessage(encodeMailMessage(m))).toEqual(m);
    expect(decodeMailMessage(Buffer.from('{"x":1}'))).toBeUndefined();
    expect(decodeMailMessage(Buffer.from('not json'))).toBeUndefined();
  });
});
