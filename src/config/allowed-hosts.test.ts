import { describe, expect, it } from 'vitest';
import { parseAllowedHosts } from './allowed-hosts.js';
import { parseConfigKey } from './schema.js';

const hosts = (text: string) => {
  const r = parseAllowedHosts(text);
  return r.ok ? r.items : `refused: ${r.reason}`;
};

describe('http/allowed_hosts', () => {
  it('takes names separated by commas or blanks, or a JSON array; lower case, no final dot', () => {
    expect(hosts('')).toEqual([]);
    expect(hosts('api.example.com, *.Library.Example.org\nAPI2.example.com.')).toEqual([
      'api.example.com',
      '*.library.example.org',
      'api2.example.com',
    ]);
    expect(hosts('["api.example.com", "127.0.0.1", "[::1]", "localhost"]')).toEqual([
      'api.example.com',
      '127.0.0.1',
      '[::1]',
      'localhost',
    ]);
    expect(hosts('*')).toEqual(['*']);
  });

  it('refuses what is no host name, saying what to write', () => {
    expect(hosts('https://api.example.com')).toBe(
      'refused: "https://api.example.com" is a URL: write the host name alone, as api.example.com',
    );
    expect(hosts('api.example.com:8080')).toContain('has a port: write the name alone');
    expect(hosts('api.example.com [::1]:8080')).toContain('"[::1]:8080" looks like an IPv6 address');
    expect(hosts('api.example.com/v1')).toContain('no path, query or credentials');
    expect(hosts('api.*.example.com')).toContain('"*" may only begin a name');
    expect(hosts('*.*.example.com')).toContain('"*" may only begin a name');
    expect(hosts('*.')).toContain('is not a host name');
    expect(hosts('api..example.com')).toContain('is not a host name');
    expect(hosts('-api.example.com')).toContain('is not a host name');
    expect(hosts(`${'a'.repeat(64)}.example.com`)).toContain('is not a host name');
    expect(hosts('bücher.example')).toBe(
      'refused: "bücher.example" is not ASCII: write "xn--bcher-kva.example"',
    );
    expect(hosts('*.bücher.example')).toContain('write "*.xn--bcher-kva.example"');
    expect(hosts('api;.example.com')).toContain('is not a host name');
    // one label is what private networks use: taken as written
    expect(hosts('*.internal, *.localhost')).toEqual(['*.internal', '*.localhost']);
    expect(hosts('::1')).toContain('looks like an IPv6 address: addresses are always answered');
  });

  it('refuses "*" beside names, a duplicate, too many names, too long a text, a broken JSON array', () => {
    expect(hosts('*, api.example.com')).toBe('refused: "*" answers every host: it must be the only entry');
    expect(hosts('api.example.com API.example.com.')).toBe('refused: lists "api.example.com" more than once');
    const many = Array.from({ length: 101 }, (_, i) => `h${i}.example.com`).join(',');
    expect(hosts(many)).toBe('refused: lists 101 names; at most 100 (use *.example.com)');
    expect(hosts(`${'a,'.repeat(4100)}`)).toBe('refused: must be at most 8192 characters');
    expect(hosts('["api.example.com"')).toBe('refused: starts with "[" but is not a JSON array');
    expect(hosts('[1]')).toBe('refused: must be a JSON array of strings');
  });

  it('refuses a JSON null, boolean or string alone instead of reading it as a name', () => {
    // an outside check put `null` meaning "none", and "null" became the one allowed host
    expect(hosts('null')).toBe(
      'refused: is JSON null, not a list: write the items bare, separated by commas or blanks, or as a JSON array of strings; empty for the default',
    );
    expect(hosts(' true ')).toContain('is JSON true, not a list');
    expect(hosts('false')).toContain('is JSON false, not a list');
    expect(hosts('"api.example.com"')).toBe(
      'refused: is a JSON string, not a list: write the items bare, separated by commas or blanks, or as a JSON array of strings',
    );
    // names are compared in lower case: such a word alone, in any case, is refused too (a review)
    for (const word of ['NULL', 'Null', 'TRUE', 'None', 'nil', 'undefined'])
      expect(hosts(word)).toBe(
        `refused: is the word ${word} alone, which names nothing: write the items bare, separated by commas or blanks, or as a JSON array of strings; empty for the default`,
      );
    // alone beside separators too
    expect(hosts('NULL,')).toContain('is the word NULL alone, which names nothing');
    expect(hosts(' , None , ')).toContain('is the word None alone, which names nothing');
    // as part of a list or a name, the words are names
    expect(hosts('null.example.com, nullable')).toEqual(['null.example.com', 'nullable']);
    expect(hosts('none, api.example.com')).toEqual(['none', 'api.example.com']);
    expect(hosts('["null"]')).toEqual(['null']);
  });

  it('is a config key: a refused value names the key and its reason', () => {
    expect(parseConfigKey('http/allowed_hosts', 'api.example.com')).toEqual({
      ok: true,
      parsed: { type: 'scalar', key: 'http/allowed_hosts', value: ['api.example.com'] },
    });
    const refused = parseConfigKey('http/allowed_hosts', 'api.example.com:443');
    expect(refused.ok).toBe(false);
    expect(JSON.stringify(refused)).toContain('has a port');
  });
});
