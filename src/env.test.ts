import { describe, expect, it } from 'vitest';
import { EnvError, etcdCredentials, parseEnv, parseEnvOf, reachableHost } from './env.js';

describe('parseEnv', () => {
  it('fills the defaults of CONTRACT.md §3', () => {
    const env = parseEnv({});
    expect(env.SHARDGATE_ETCD_ENDPOINTS).toEqual(['http://127.0.0.1:2379']);
    expect(env.SHARDGATE_AMQP_URL).toBe('amqp://guest:guest@127.0.0.1:5673');
    expect(env.PORT).toBe(8787);
  });

  it('listens on loopback unless SHARDGATE_LISTEN_HOST says otherwise', () => {
    expect(parseEnv({}).SHARDGATE_LISTEN_HOST).toBe('127.0.0.1');
    for (const host of ['0.0.0.0', '::', '::1', '10.1.2.3', 'fd00::2', 'localhost', 'api-1', 'api.internal'])
      expect(parseEnv({ SHARDGATE_LISTEN_HOST: host }).SHARDGATE_LISTEN_HOST).toBe(host);
  });

  it.each([
    '',
    ' 127.0.0.1',
    '300.1.1.1',
    '10.0.1',
    '[::1]',
    '127.0.0.1:8080',
    'http://127.0.0.1',
    'a_b',
    '-api',
    'api..internal',
  ])('stops at a malformed SHARDGATE_LISTEN_HOST %j with one line naming it', (value) => {
    const parse = () => parseEnv({ SHARDGATE_LISTEN_HOST: value });
    expect(parse).toThrow(EnvError);
    expect(parse).toThrow(
      /^invalid environment variable SHARDGATE_LISTEN_HOST: must be an IP address or a hostname, e\.g\. [^\n]*$/,
    );
  });

  it('takes the URL schemes each client speaks', () => {
    const env = parseEnv({
      SHARDGATE_ETCD_ENDPOINTS: 'https://a:2379, http://b:2379',
      SHARDGATE_REDIS_URL: 'rediss://cache:6380',
      SHARDGATE_AMQP_URL: 'amqps://u:p@mq:5671',
      SHARDGATE_SMTP_URL: 'smtps://mail:465',
    });
    expect(env.SHARDGATE_ETCD_ENDPOINTS).toEqual(['https://a:2379', 'http://b:2379']);
    expect(
      parseEnv({ SHARDGATE_ETCD_ENDPOINTS: 'http://a:2379/,http://[::1]:2379/' }).SHARDGATE_ETCD_ENDPOINTS,
    ).toEqual(['http://a:2379', 'http://[::1]:2379']);
  });

  it.each([
    ['SHARDGATE_AMQP_URL', 'http://x', 'amqp or amqps'],
    ['SHARDGATE_REDIS_URL', 'amqp://x', 'redis or rediss'],
    ['SHARDGATE_SMTP_URL', 'nope', 'smtp or smtps'],
    ['SHARDGATE_ETCD_ENDPOINTS', 'http://a:2379,127.0.0.1:2379', 'http or https'],
    [
      'SHARDGATE_ETCD_ENDPOINTS',
      'notaurl',
      'must be a URL such as http://host:port \\(scheme http or https\\)$',
    ],
    ['SHARDGATE_ETCD_ENDPOINTS', 'http://user:sekret@127.0.0.1:2379', 'must not hold a user or password'],
    ['SHARDGATE_ETCD_ENDPOINTS', 'http://127.0.0.1:2379/some/path', 'without a path or query'],
    ['SHARDGATE_ETCD_ENDPOINTS', 'http://a:2379,http://b:2379?x=1', 'without a path or query'],
    ['PORT', 'abc', ''],
    ['SHARDGATE_DB_HOSTS', 'db-1,db 2', '"db 2" is not a host or host:port'],
  ])('stops at a malformed %s with one line naming it', (name, value, why) => {
    const parse = () => parseEnv({ [name]: value });
    expect(parse).toThrow(EnvError);
    // the value is never repeated: it may hold a password
    expect(parse).not.toThrow(/sekret/);
    expect(parse).toThrow(new RegExp(`^invalid environment variable ${name}: .*${why}`));
    try {
      parse();
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('reads SHARDGATE_DB_HOSTS into the policy the config enforces; unset allows every server', () => {
    expect(parseEnv({}).SHARDGATE_DB_HOSTS).toBeUndefined();
    const policy = parseEnv({ SHARDGATE_DB_HOSTS: '127.0.0.1,db-2:3306' }).SHARDGATE_DB_HOSTS!;
    expect([
      policy.allows('127.0.0.1', 3317),
      policy.allows('db-2', 3306),
      policy.allows('db-2', 3307),
    ]).toEqual([true, true, false]);
  });

  it('names a variable the process requires', () => {
    expect(() => parseEnv({}, { require: ['SHARDGATE_JWT_SECRET'] })).toThrow(
      'missing required environment variable SHARDGATE_JWT_SECRET',
    );
  });

  it('requires the database password to be set, and takes it empty (a passwordless account)', () => {
    const require = ['SHARDGATE_DB_PASSWORD'] as const;
    expect(() => parseEnv({}, { require: [...require] })).toThrow(
      /^missing required environment variable SHARDGATE_DB_PASSWORD \(set it empty for a passwordless account, or when every shard in etcd names its own passwordEnv\)$/,
    );
    expect(parseEnv({ SHARDGATE_DB_PASSWORD: '' }, { require: [...require] }).SHARDGATE_DB_PASSWORD).toBe('');
  });
});

describe('SHARDGATE_JWT_SECRET_ACCEPTED (the other secret of a rotation)', () => {
  const secret = 'x'.repeat(32);
  const other = 'y'.repeat(32);

  it('is optional, taken when at least 32 characters, and unset when empty', () => {
    expect(parseEnv({ SHARDGATE_JWT_SECRET: secret }).SHARDGATE_JWT_SECRET_ACCEPTED).toBeUndefined();
    expect(
      parseEnv({ SHARDGATE_JWT_SECRET: secret, SHARDGATE_JWT_SECRET_ACCEPTED: other })
        .SHARDGATE_JWT_SECRET_ACCEPTED,
    ).toBe(other);
    expect(
      parseEnv({ SHARDGATE_JWT_SECRET: secret, SHARDGATE_JWT_SECRET_ACCEPTED: '' })
        .SHARDGATE_JWT_SECRET_ACCEPTED,
    ).toBeUndefined();
  });

  it('stops at start when shorter than 32 characters, with one line naming it and not the value', () => {
    const parse = () =>
      parseEnv({ SHARDGATE_JWT_SECRET: secret, SHARDGATE_JWT_SECRET_ACCEPTED: 'sekret-too-short' });
    expect(parse).toThrow(
      new EnvError(
        'invalid environment variable SHARDGATE_JWT_SECRET_ACCEPTED: must be at least 32 characters',
      ),
    );
  });

  it('stops at start when equal to SHARDGATE_JWT_SECRET, in parseEnv and parseEnvOf', () => {
    const source = { SHARDGATE_JWT_SECRET: secret, SHARDGATE_JWT_SECRET_ACCEPTED: secret };
    const line =
      /^invalid environment variable SHARDGATE_JWT_SECRET_ACCEPTED: must differ from SHARDGATE_JWT_SECRET/;
    expect(() => parseEnv(source, { require: ['SHARDGATE_JWT_SECRET'] })).toThrow(line);
    expect(() => parseEnvOf(source, ['SHARDGATE_JWT_SECRET', 'SHARDGATE_JWT_SECRET_ACCEPTED'])).toThrow(line);
    try {
      parseEnv(source);
    } catch (error) {
      expect(error).toBeInstanceOf(EnvError);
      expect((error as Error).message).not.toContain(secret);
    }
  });
});

describe('etcd credentials', () => {
  const password = 'sekret-etcd-password';

  it('are both or neither; empty is unset', () => {
    expect(etcdCredentials(parseEnv({}))).toBeUndefined();
    expect(
      etcdCredentials(parseEnv({ SHARDGATE_ETCD_USERNAME: '', SHARDGATE_ETCD_PASSWORD: '' })),
    ).toBeUndefined();
    expect(
      etcdCredentials(parseEnv({ SHARDGATE_ETCD_USERNAME: 'sg-api', SHARDGATE_ETCD_PASSWORD: password })),
    ).toEqual({ username: 'sg-api', password });
  });

  it.each([
    [{ SHARDGATE_ETCD_USERNAME: 'sg-api' }, 'SHARDGATE_ETCD_PASSWORD: SHARDGATE_ETCD_USERNAME is set'],
    [
      { SHARDGATE_ETCD_USERNAME: 'sg-api', SHARDGATE_ETCD_PASSWORD: '' },
      'SHARDGATE_ETCD_PASSWORD: SHARDGATE_ETCD_USERNAME is set',
    ],
    [{ SHARDGATE_ETCD_PASSWORD: password }, 'SHARDGATE_ETCD_USERNAME: SHARDGATE_ETCD_PASSWORD is set'],
  ])('stop the process at start when one is missing, naming it (%j)', (source, line) => {
    const names = ['SHARDGATE_ETCD_USERNAME', 'SHARDGATE_ETCD_PASSWORD'] as const;
    for (const parse of [() => parseEnv(source), () => parseEnvOf(source, names)]) {
      expect(parse).toThrow(EnvError);
      expect(parse).toThrow(
        new RegExp(`^missing environment variable ${line} \\(etcd credentials are both or neither\\)$`),
      );
      expect(parse).not.toThrow(password);
    }
  });

  it('are not checked by a process that reads neither', () => {
    expect(() => parseEnvOf({ SHARDGATE_ETCD_USERNAME: 'sg-api' }, ['SHARDGATE_ETCD_PREFIX'])).not.toThrow();
  });
});

describe('parseEnvOf', () => {
  it('parses only the variables named, with their defaults', () => {
    const env = parseEnvOf({ PORT: '', SHARDGATE_ETCD_PREFIX: '/x/' }, [
      'SHARDGATE_ETCD_PREFIX',
      'SHARDGATE_DB_USER',
    ]);
    expect(env).toEqual({ SHARDGATE_ETCD_PREFIX: '/x/', SHARDGATE_DB_USER: 'shardgate' });
  });

  it('names the first bad one of them', () => {
    expect(() => parseEnvOf({ SHARDGATE_ETCD_PREFIX: 'x' }, ['SHARDGATE_ETCD_PREFIX'])).toThrow(
      new EnvError('invalid environment variable SHARDGATE_ETCD_PREFIX: must start and end with "/"'),
    );
  });
});

describe('reachableHost', () => {
  it('turns a listen address into a URL host that reaches it from this machine', () => {
    expect(reachableHost('127.0.0.1')).toBe('127.0.0.1');
    expect(reachableHost('0.0.0.0')).toBe('127.0.0.1');
    expect(reachableHost('::')).toBe('[::1]');
    expect(reachableHost('::1')).toBe('[::1]');
    expect(reachableHost('fd00::2')).toBe('[fd00::2]');
    expect(reachableHost('api.internal')).toBe('api.internal');
    // a URL built from it parses back to the same host
    expect(new URL(`http://${reachableHost('fd00::2')}:8101`).hostname).toBe('[fd00::2]');
  });
});
