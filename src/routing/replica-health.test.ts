import { describe, expect, it } from 'vitest';
import { ReplicaHealth } from './replica-health.js';

describe('replica admission with hysteresis', () => {
  it('admits a fresh replica on its first good probe', () => {
    const h = new ReplicaHealth();
    expect(h.admitted).toBe(false);
    h.observe(0.1, 5);
    expect(h.admitted).toBe(true);
  });

  it('shows why it may lag (threads stopped by hand) as lastError while the lag excludes it, and only then', () => {
    const h = new ReplicaHealth();
    const note =
      'replication IO and SQL thread stopped without an error (STOP SLAVE); it falls behind until started';
    h.observe(1, 5, { note });
    expect([h.state, h.lastError]).toEqual(['admitted', undefined]);
    h.observe(6, 5, { note });
    expect([h.state, h.cause, h.lastError]).toEqual(['excluded', 'lag', note]);
    h.observe(7, 5);
    expect([h.cause, h.lastError]).toEqual(['lag', undefined]);
    // on its way back, between max/2 and the max, or readmitting: still kept out, still said
    h.observe(4, 5, { note });
    expect([h.state, h.cause, h.lastError]).toEqual(['excluded', 'lag', note]);
    h.observe(2, 5, { note });
    expect([h.state, h.cause, h.lastError]).toEqual(['excluded', 'readmitting', note]);
    h.observe(1, 5, { note });
    expect([h.state, h.lastError]).toEqual(['admitted', undefined]);
  });

  it('excludes above the max and re-admits only after 2 probes below max/2', () => {
    const h = new ReplicaHealth();
    h.observe(0, 5);
    h.observe(4.9, 5);
    expect(h.admitted).toBe(true); // at or below max stays in
    h.observe(5.1, 5);
    expect(h.state).toBe('excluded');
    h.observe(4, 5); // below max but above max/2: still out
    expect(h.admitted).toBe(false);
    h.observe(2, 5);
    expect(h.admitted).toBe(false); // one good probe is not enough
    h.observe(2.4, 5);
    expect(h.admitted).toBe(true);
  });

  it('a bad probe in the middle of the streak restarts it', () => {
    const h = new ReplicaHealth();
    h.observe(10, 5);
    h.observe(1, 5);
    h.observe(3, 5);
    h.observe(1, 5);
    expect(h.admitted).toBe(false);
    h.observe(1, 5);
    expect(h.admitted).toBe(true);
  });

  it('a failed probe excludes at once and reports the error', () => {
    const h = new ReplicaHealth();
    h.observe(0, 5);
    h.fail('ECONNREFUSED');
    expect(h.state).toBe('excluded');
    expect(h.lagSeconds).toBe(Number.POSITIVE_INFINITY);
    expect(h.lastError).toBe('ECONNREFUSED');
  });

  it('a lag known only as a lower bound within the max admits nothing: unknown, not a good probe', () => {
    const h = new ReplicaHealth();
    h.observe(2, 5, { atLeast: true });
    expect(h.state).toBe('unknown');
    expect(h.lagSeconds).toBe(Number.POSITIVE_INFINITY);
    expect(h.lastError).toMatch(/unknown/);
    h.observe(0, 5); // now exact and good: admitted at once, as a fresh replica
    expect(h.admitted).toBe(true);
    h.observe(1, 5, { atLeast: true }); // an admitted replica whose lag is no longer bounded
    expect(h.state).toBe('unknown');
    h.observe(6, 5, { atLeast: true }); // a lower bound past the max: known to be over it
    expect(h.state).toBe('excluded');
    expect(h.lagSeconds).toBe(6);
    h.observe(1, 5);
    h.observe(1, 5, { atLeast: true }); // breaks the re-admission streak, stays excluded
    h.observe(1, 5);
    expect(h.state).toBe('excluded');
    h.observe(1, 5);
    expect(h.admitted).toBe(true);
  });

  describe('slow probes (replication/max_latency_ms)', () => {
    it('an admitted or never-judged replica is excluded at the second slow probe in a row, and re-admitted after two fast ones', () => {
      for (const start of ['admitted', 'unknown'] as const) {
        const h = new ReplicaHealth();
        if (start === 'admitted') h.observe(0, 5);
        expect(h.state).toBe(start);
        h.observe(0, 5, { slow: 'far' });
        expect(h.state).toBe(start);
        h.observe(0, 5, { slow: 'far' });
        expect([h.state, h.lastError]).toEqual(['excluded', 'far']);
        h.observe(0, 5);
        expect(h.state).toBe('excluded');
        h.observe(0, 5);
        expect(h.state).toBe('admitted');
      }
    });

    it('a fast probe between two slow ones starts the count again', () => {
      const h = new ReplicaHealth();
      h.observe(0, 5);
      h.observe(0, 5, { slow: 'far' });
      h.observe(0, 5);
      h.observe(0, 5, { slow: 'far' });
      expect(h.state).toBe('admitted');
    });

    it('a round with nothing to compare with (unjudged) moves neither streak', () => {
      const h = new ReplicaHealth();
      h.observe(0, 5);
      h.observe(0, 5, { slow: 'far' });
      h.observe(0, 5, { unjudged: true });
      h.observe(0, 5, { slow: 'far' });
      expect(h.state).toBe('excluded'); // the unjudged round did not end the slow streak
      h.observe(0, 5, { unjudged: true });
      h.observe(0, 5, { unjudged: true });
      expect(h.state).toBe('excluded'); // nor count as fast probes
      h.observe(0, 5);
      h.observe(0, 5);
      expect(h.state).toBe('admitted');
    });

    it('an unjudged round still applies the lag rules: a lag known only as a bound, a lag over half the max', () => {
      const h = new ReplicaHealth();
      h.observe(0, 5);
      h.observe(3, 5, { atLeast: true, unjudged: true });
      expect([h.state, h.lagSeconds]).toEqual(['unknown', Number.POSITIVE_INFINITY]);
      const e = new ReplicaHealth();
      e.observe(9, 5);
      e.observe(0, 5);
      e.observe(4, 5, { unjudged: true }); // over half the max: the streak starts again
      e.observe(0, 5);
      expect(e.state).toBe('excluded');
    });

    it('a lag over the max excludes whatever the latency', () => {
      const h = new ReplicaHealth();
      h.observe(0, 5);
      h.observe(9, 5, { unjudged: true });
      expect(h.state).toBe('excluded');
    });
  });
});

describe('ReplicaHealth cause', () => {
  it('names why a replica is not read from, and none while admitted', () => {
    const h = new ReplicaHealth({ readmitProbes: 2 });
    expect(h.cause).toBe('not_probed');
    h.observe(1, 10);
    expect([h.state, h.cause]).toEqual(['admitted', undefined]);
    h.observe(11, 10);
    expect([h.state, h.cause]).toEqual(['excluded', 'lag']);
    h.observe(7, 10); // over half the max while excluded
    expect(h.cause).toBe('lag');
    h.observe(2, 10);
    expect([h.state, h.cause]).toEqual(['excluded', 'readmitting']);
    h.observe(2, 10);
    expect(h.cause).toBeUndefined();
    h.observe(1, 10, { slow: 'rtt 300 ms' });
    h.observe(1, 10, { slow: 'rtt 300 ms' });
    expect([h.state, h.cause]).toEqual(['excluded', 'slow']);
    h.fail('connect ECONNREFUSED');
    expect(h.cause).toBe('unreachable');
    h.fail('Slave_SQL_Running: No (1032)', 'replication_stopped');
    expect(h.cause).toBe('replication_stopped');
    h.fail('ahead', 'ahead_of_master');
    expect(h.cause).toBe('ahead_of_master');
    h.observe(3, 10, { atLeast: true });
    expect([h.state, h.cause]).toEqual(['excluded', 'lag_unknown']);
  });

  it('says readmitting once a failed replica answers within the lag, also in a round it cannot judge', () => {
    const h = new ReplicaHealth({ readmitProbes: 2 });
    h.observe(1, 10);
    h.fail('connect ECONNREFUSED');
    h.observe(1, 10, { unjudged: true }); // the master did not answer this round
    expect([h.state, h.cause, h.lastError]).toEqual(['excluded', 'readmitting', undefined]);
  });

  it('says slow from the first slow probe of a never-judged replica; a read past its budget is read_timeout', () => {
    const h = new ReplicaHealth();
    h.observe(1, 10, { slow: 'rtt 300 ms' });
    expect([h.state, h.cause]).toEqual(['unknown', 'slow']);
    h.fail('no answer to a read within 900 ms', 'read_timeout');
    expect(h.cause).toBe('read_timeout');
  });
});
