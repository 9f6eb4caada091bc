import { describe, expect, it } from 'vitest';
import { LogDestination } from './log-destination.js';
import { createLogger } from './logger.js';

describe('createLogger', () => {
  it('writes pino JSON lines, and once the destination takes lines again one warning says how many it refused', async () => {
    let written = '';
    let failing: string | undefined;
    const destination = new LogDestination({
      fd: 99,
      writeSync: (_fd, data) => {
        if (failing) throw Object.assign(new Error('fake'), { code: failing });
        written += Buffer.from(data).toString('utf8');
        return data.length;
      },
    });
    const logger = createLogger({ base: { instance: 'api-x' }, destination });

    logger.info({ n: 1, password: 'hunter2' }, 'first');
    failing = 'ENOSPC';
    logger.warn({ n: 2 }, 'refused');
    logger.error({ n: 3 }, 'refused too');
    failing = undefined;
    logger.info({ n: 4 }, 'after');
    await Promise.resolve();

    const lines = written
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({
      level: 30,
      instance: 'api-x',
      n: 1,
      password: '[redacted]',
      msg: 'first',
    });
    expect(typeof lines[0].time).toBe('string');
    expect(lines[1]).toMatchObject({ n: 4, msg: 'after' });
    expect(lines[2]).toMatchObject({
      level: 40,
      instance: 'api-x',
      dropped: 2,
      reason: 'ENOSPC',
      msg: "log lines were dropped: the log's destination refused them",
    });
  });
});
