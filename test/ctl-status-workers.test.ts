/**
 * `shardgate-ctl status` asks the email workers too (control-plane/worker-urls.ts): they register
 * nothing in etcd, so it asks SHARDGATE_WORKER_URLS, else the local stack's worker. A worker's
 * open breaker (its RabbitMQ, a shard master of its outbox) and a key it rejects were shown
 * nowhere the control plane looks, only at its own port.
 *
 * The local stack's real worker is asked in the first case. The open breaker and the rejected key
 * come from a stand-in answering the worker's two endpoints in their shape (test/email.test.ts
 * holds the real worker to that shape): opening the real worker's breakers would need a broker
 * outage long enough to count its failures.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STACK_WORKER_URL } from '../control-plane/worker-urls.js';
import { ctlAsync } from './helpers/ctl.js';

let standIn: Server;
let standInUrl = '';
let closedUrl = '';

beforeAll(async () => {
  standIn = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/health/circuit-breakers') {
      res.end(
        JSON.stringify({
          configRevision: 1,
          breakers: [
            { name: 'rabbitmq', state: 'open' },
            { name: 'mysql-master:shard-1', state: 'closed' },
          ],
        }),
      );
    } else if (req.url === '/health/config') {
      res.end(
        JSON.stringify({
          revision: 1,
          rejected: [
            { key: 'breakers/rabbitmq/half_open_max_calls', reason: 'must be a whole number from 1 to 1000' },
          ],
        }),
      );
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => standIn.listen(0, '127.0.0.1', r));
  standInUrl = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
  // a port nothing listens on
  const gone = createServer();
  await new Promise<void>((r) => gone.listen(0, '127.0.0.1', r));
  closedUrl = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
  await new Promise((r) => gone.close(r));
});

afterAll(async () => {
  await new Promise((r) => standIn.close(r));
});

describe('shardgate-ctl status and the email workers', () => {
  it("asks the local stack's worker when SHARDGATE_WORKER_URLS is unset", async () => {
    const r = await ctlAsync(['status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`email workers:\n  ${STACK_WORKER_URL}  answering\n`);
    const json = await ctlAsync(['status', '--json']);
    const view = JSON.parse(json.stdout) as { workers: { url: string; answering: boolean }[] };
    expect(view.workers.map((w) => [w.url, w.answering])).toEqual([[STACK_WORKER_URL, true]]);
  }, 30_000);

  it("names a listed worker's open breaker and rejected key, and one that does not answer", async () => {
    const env = { SHARDGATE_WORKER_URLS: `${standInUrl},${closedUrl}` };
    const r = await ctlAsync(['status'], env);
    expect(r.code, r.stderr).toBe(0);
    const tail = r.stdout.slice(r.stdout.indexOf('email workers:'));
    expect(tail).toBe(
      [
        'email workers:',
        `  ${standInUrl}  answering`,
        `  ${closedUrl}  not answering`,
        `  ! rabbitmq open on ${standInUrl}: its calls are refused at once`,
        `rejected by worker ${standInUrl} /shardgate/breakers/rabbitmq/half_open_max_calls: must be a whole number from 1 to 1000`,
        '',
      ].join('\n'),
    );
    const json = await ctlAsync(['status', '--json'], env);
    const view = JSON.parse(json.stdout) as {
      workers: { url: string; answering: boolean; rejected: unknown }[];
      workerOpenBreakers: { breaker: string; state: string; instances: string[] }[];
    };
    expect(view.workers).toEqual([
      {
        url: standInUrl,
        answering: true,
        rejected: [
          { key: 'breakers/rabbitmq/half_open_max_calls', reason: 'must be a whole number from 1 to 1000' },
        ],
      },
      { url: closedUrl, answering: false, rejected: null },
    ]);
    expect(view.workerOpenBreakers).toEqual([
      { breaker: 'rabbitmq', state: 'open', instances: [standInUrl] },
    ]);
  }, 30_000);

  it("asks a URL listed twice once, and leaves out an API instance's with a warning", async () => {
    const instance = 'http://127.0.0.1:8101';
    const r = await ctlAsync(['status'], {
      SHARDGATE_WORKER_URLS: `${standInUrl},${standInUrl}/,${instance}`,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `shardgate-ctl: SHARDGATE_WORKER_URLS: ${instance} is API instance api-1, not an email worker; left out\n`,
    );
    const tail = r.stdout.slice(r.stdout.indexOf('email workers:'));
    expect(tail.split('\n').filter((l) => l.startsWith('  http'))).toEqual([`  ${standInUrl}  answering`]);
    expect(tail).toContain(`  ! rabbitmq open on ${standInUrl}: its calls are refused at once\n`);
    const only = await ctlAsync(['status'], { SHARDGATE_WORKER_URLS: instance });
    expect(only.code, only.stderr).toBe(0);
    expect(only.stdout).toContain(
      '\nemail workers: none listed (SHARDGATE_WORKER_URLS names only API instances)\n',
    );
  }, 30_000);

  it('refuses a malformed SHARDGATE_WORKER_URLS, naming the variable', async () => {
    const r = await ctlAsync(['status'], { SHARDGATE_WORKER_URLS: 'http://127.0.0.1:9464/metrics' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SHARDGATE_WORKER_URLS');
    expect(r.stdout).toBe('');
    const secret = await ctlAsync(['status'], { SHARDGATE_WORKER_URLS: 'http://u:sekret@127.0.0.1:9464' });
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain("must not hold a user or password: a worker's health port takes none");
    expect(secret.stderr).not.toContain('sekret');
  }, 30_000);
});
