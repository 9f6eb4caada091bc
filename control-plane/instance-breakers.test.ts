import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { breakerTrouble } from './instance-breakers.js';

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** an instance answering /health/circuit-breakers with `breakers` */
function instance(breakers: { name: string; state: string }[]): Promise<string> {
  return new Promise((resolve) => {
    const server = createServer((_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ configRevision: 1, breakers }));
    });
    servers.push(server);
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    );
  });
}

describe('breakerTrouble', () => {
  it('collects the open and half_open breakers (the contract spelling) of every instance, one entry per breaker and state', async () => {
    // a review: `half-open` was matched, and a half-open breaker was never shown
    const a = await instance([
      { name: 'mysql-master:shard-2', state: 'open' },
      { name: 'redis', state: 'half_open' },
      { name: 'mysql-master:shard-1', state: 'closed' },
    ]);
    const b = await instance([{ name: 'mysql-master:shard-2', state: 'open' }]);
    expect(
      await breakerTrouble([
        { id: 'api-1', url: a },
        { id: 'api-2', url: b },
        { id: 'api-3', url: 'http://127.0.0.1:1' },
      ]),
    ).toEqual([
      { breaker: 'mysql-master:shard-2', state: 'open', instances: ['api-1', 'api-2'] },
      { breaker: 'redis', state: 'half_open', instances: ['api-1'] },
    ]);
  });
});
