import { describe, expect, it } from 'vitest';
import { parseCorsOrigins } from './cors-origins.js';
import { parseConfigKey } from './schema.js';

const origins = (text: string) => {
  const r = parseCorsOrigins(text);
  return r.ok ? r.items : `refused: ${r.reason}`;
};

describe('cors/allowed_origins', () => {
  it('takes origins separated by commas or blanks, or a JSON array, empty for none', () => {
    expect(origins('')).toEqual([]);
    expect(origins(' \n')).toEqual([]);
    expect(origins('https://app.example.com, http://localhost:5173\nhttp://[::1]:8000')).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
      'http://[::1]:8000',
    ]);
    expect(origins('["https://app.example.com", "http://localhost:5173"]')).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    expect(origins('*')).toEqual(['*']);
    expect(origins('["*"]')).toEqual(['*']);
  });

  it('refuses an origin not written as a browser sends it, naming the spelling that would match', () => {
    expect(origins('https://app.example.com/')).toBe(
      'refused: "https://app.example.com/" is not written as a browser sends it: write "https://app.example.com"',
    );
    expect(origins('HTTPS://App.Example.com')).toContain('write "https://app.example.com"');
    expect(origins('https://app.example.com:443')).toContain('write "https://app.example.com"');
    expect(origins('https://bücher.example')).toContain('write "https://xn--bcher-kva.example"');
    expect(origins('https://app.example.com/path')).toContain('write "https://app.example.com"');
    expect(origins('https://user:pw@app.example.com')).toContain('no credentials, path, query or fragment');
    expect(origins('app.example.com')).toContain('is not an origin: write scheme://host[:port]');
    expect(origins('ftp://app.example.com')).toContain('the scheme must be http or https');
    expect(origins('null')).toContain('is JSON null, not a list');
    expect(origins('null https://a.example')).toContain('"null" is not an origin');
    // port 0: the URL parser takes it, no page is served from it (an outside check)
    expect(origins('https://a.example:0')).toContain('port 0 is not a port a page is served from');
    expect(origins('https://a.example:65535')).toEqual(['https://a.example:65535']);
  });

  it('refuses a host no page has, such as a `;` typed for a comma (HAProxy would read it as a command end)', () => {
    const hostRule =
      'is not an origin: the host must be letters, digits, "-", "_" and "." (or an IP address)';
    expect(origins('https://a.example; https://b.example')).toBe(`refused: "https://a.example;" ${hostRule}`);
    for (const bad of [
      'http://a;b.example',
      "http://a'b.example",
      'http://a$b.example',
      'http://a*b.example',
    ])
      expect(origins(bad), bad).toBe(`refused: ${JSON.stringify(bad)} ${hostRule}`);
    expect(origins('http://my_host.internal:8080, http://127.0.0.1:3000, https://a.example.')).toEqual([
      'http://my_host.internal:8080',
      'http://127.0.0.1:3000',
      'https://a.example.',
    ]);
  });

  it('refuses "*" beside other origins, a duplicate, too many, a JSON array of other things', () => {
    expect(origins('*, https://a.example')).toBe(
      'refused: "*" allows every origin: it must be the only entry',
    );
    expect(origins('https://a.example https://a.example')).toBe(
      'refused: lists "https://a.example" more than once',
    );
    const many = Array.from({ length: 101 }, (_, i) => `https://a${i}.example`).join(',');
    expect(origins(many)).toBe('refused: lists 101 origins; at most 100');
    expect(origins('[1, 2]')).toBe('refused: must be a JSON array of strings');
    expect(origins('["https://a.example"')).toBe('refused: starts with "[" but is not a JSON array');
    expect(origins('x'.repeat(8193))).toBe('refused: must be at most 8192 characters');
  });

  it('is a plain setting of the config schema: the reason is what an operator sees for the key', () => {
    const good = parseConfigKey('cors/allowed_origins', 'https://a.example');
    expect(good).toEqual({
      ok: true,
      parsed: { type: 'scalar', key: 'cors/allowed_origins', value: ['https://a.example'] },
    });
    const bad = parseConfigKey('cors/allowed_origins', 'https://a.example/');
    expect(bad).toEqual({
      ok: false,
      reason: '"https://a.example/" is not written as a browser sends it: write "https://a.example"',
    });
  });
});
