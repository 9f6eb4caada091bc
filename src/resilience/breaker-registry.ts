/**
 * One circuit breaker per dependency node (`mysql-master:<shard>`, `mysql-replica:<shard>:<n>`,
 * `redis`, `rabbitmq`), created on first use, with the settings of its kind read live from the
 * config store on every event. Transitions are logged and counted; state is exported as a gauge.
 */
import type { ConfigStore } from '../config/interface.js';
import type { BreakerKind } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { type BreakerState, type BreakerView, CALL_OUTCOMES, CircuitBreaker } from './circuit-breaker.js';
import { ResourceShortage } from './own-resources.js';

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

export class BreakerRegistry {
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly config: ConfigStore;
  private readonly logger: Logger;
  private readonly transitions;
  private readonly callSeconds;

  private readonly loopIdleMs: (() => number) | undefined;
  /**
   * calls of any breaker that failed because this process is out of file descriptors
   * (own-resources.ts): not counted by the breaker; `/health/ready` answers 503 meanwhile
   */
  readonly shortage: ResourceShortage;

  constructor({
    config,
    logger,
    metrics,
    loopIdleMs,
    softFileLimit,
  }: {
    config: ConfigStore;
    logger: Logger;
    metrics: Metrics;
    /** the event loop's idle time, where the runtime tells it (circuit-breaker.ts `loopIdleMs`) */
    loopIdleMs?: () => number;
    /** the soft limit on open files of this process, where the runtime tells it (own-resources.ts) */
    softFileLimit?: () => number | undefined;
  }) {
    this.shortage = new ResourceShortage({ logger, metrics, softLimit: softFileLimit });
    this.config = config;
    this.loopIdleMs = loopIdleMs;
    this.logger = logger.child({ component: 'breakers' });
    this.transitions = metrics.counter({
      name: 'breaker_transitions_total',
      help: 'circuit breaker state transitions',
      labelNames: ['breaker', 'kind', 'from', 'to'],
    });
    // how long each dependency takes to answer, per node: a replica or Redis slowing down shows
    // here before its breaker counts it (an outside check found no latency per dependency)
    this.callSeconds = metrics.histogram({
      name: 'dependency_call_duration_seconds',
      help: "calls to each dependency (per breaker) by outcome: ok (an answer, or the caller's own error), error (a failure of the dependency), timeout (abandoned at call_timeout_ms); calls a breaker refused are not in it",
      labelNames: ['breaker', 'kind', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    });
    metrics.gauge({
      name: 'breaker_state',
      help: 'circuit breaker state (0 closed, 1 half-open, 2 open)',
      labelNames: ['breaker', 'kind'],
      // the breakers held now, and only those: a removed one's series goes with it (before, a
      // removed shard's breaker stayed in /metrics at its last state, "open" for good, while
      // /health/circuit-breakers no longer listed it: an outside check)
      collect: (g) => {
        g.reset();
        for (const b of this.breakers.values())
          g.set({ breaker: b.name, kind: b.kind }, STATE_VALUE[b.state]);
      },
    });
    config.onChange((_snap, changes) => {
      if (changes.some((c) => c.key.startsWith('breakers/')))
        for (const b of this.breakers.values()) b.settingsChanged();
    });
  }

  get(name: string, kind: BreakerKind): CircuitBreaker {
    let b = this.breakers.get(name);
    if (!b) {
      b = new CircuitBreaker({
        name,
        kind,
        settings: () => this.config.current().breakers[kind],
        loopIdleMs: this.loopIdleMs,
        onOwnShortage: (code, error) => this.shortage.note(code, name, error),
        onCallEnded: (outcome, seconds) =>
          this.callSeconds.observe({ breaker: name, kind, outcome }, seconds),
        onTransition: (t) => {
          this.transitions.inc({ breaker: t.name, kind: t.kind, from: t.from, to: t.to });
          // a recovery is news, not a warning (an outside check: every line of four outages was
          // at warn, the all-clear too); opening and probing stay at warn
          this.logger[t.to === 'closed' ? 'info' : 'warn'](
            { breaker: t.name, kind: t.kind, from: t.from, to: t.to, failures: t.failures, reason: t.reason },
            'breaker transition',
          );
        },
      });
      this.breakers.set(name, b);
    }
    return b;
  }

  /**
   * Forget a breaker (its node was removed or replaced); the next `get` of the name makes a new,
   * closed one. A call in flight on the old breaker finishes on it; the old one is retired (no
   * timer, no transition logged or counted). Its `breaker_transitions_total` series stay (a
   * counter's past is not taken back); its `breaker_state` and `dependency_call_duration_seconds`
   * series go.
   */
  remove(name: string): void {
    const b = this.breakers.get(name);
    if (!b) return;
    this.breakers.delete(name);
    b.retire();
    // its latency series go with it (shards come and go under new ids: an outside check saw a
    // removed shard's 32 lines stay in every scrape)
    for (const outcome of CALL_OUTCOMES) this.callSeconds.remove({ breaker: name, kind: b.kind, outcome });
    this.logger.info({ breaker: name }, 'breaker removed');
  }

  list(): BreakerView[] {
    return [...this.breakers.values()].map((b) => b.view()).sort((a, b) => a.name.localeCompare(b.name));
  }
}
