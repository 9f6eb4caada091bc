/**
 * A circuit breaker whose settings are read live on every event (CONTRACT.md §4 `breakers/…`):
 * a settings change applies to an existing breaker at once and never resets its state.
 *
 * - closed: calls pass; the count of failures reaching `failure_threshold` opens it. A failure
 *   adds one, a success takes one back (down to 0): so `failure_threshold` failures in a row open
 *   it, and so do failures that outnumber successes, however they alternate. Before, a success
 *   ended the count: a Redis paused in a loop (`CLIENT PAUSE 900` over and over), where three
 *   reads timed out and the fourth slipped through, kept its breaker closed and each cached read
 *   waiting the timeout. Failures at random open it more often than before, the more so the more
 *   often they come: simulated over 200,000 sequential calls (threshold 5), one failure in ten
 *   opened it 3 times (2 before), three in ten 682 (330), one in two 6,713 (3,152). What it
 *   cannot see: a dependency that hangs most of the time but answers many calls quickly in
 *   between, to a caller that sends one call at a time (a Redis paused 900 ms of every second, a
 *   sequential reader: ~24 timeouts among ~300 reads in 8 s, and it stays closed); with 20
 *   concurrent callers the same Redis opened it within 0.3–0.8 s. Writes (`writes: true`)
 *   that time out are counted apart from other failures: a read's success does not excuse them,
 *   so a node that hangs only on writes (a master behind a global read lock, on a full disk,
 *   waiting for a semi-sync acknowledgement) opens its breaker even while its position probes
 *   answer. A write that fails otherwise (refused, connection lost) counts as any failed call:
 *   the node is down, not stuck on writes; except one refused by a read-only server
 *   (`DependencyError.writesOnly`), counted with the timed-out writes: its position probes
 *   answer, and before this its read trials closed the breaker at once (an outside check saw it
 *   closed for 10 s of failing writes under `read_only=1`). A write whose stop reported that the dependency was
 *   not stuck (`CallStoppedError`: it waited on a row lock another transaction of its tenant
 *   held) counts as neither a failure nor a success, in any state (one whose report came after
 *   ABANDON_GRACE_MS was counted as hung then, and is taken back when the report comes, while
 *   the breaker is still closed): the node answered, and
 *   requests queued on one busy row (a popular book, a long transaction) must not open the
 *   breaker for every tenant of the shard, however many time out at once. Nor does a write sent
 *   before another call committed a write (`hungBy`): the node was committing meanwhile. Nor does a call that
 *   waited for a free connection of the pool and was never sent (`DependencyError.busy`, or a
 *   write stopped so: `ownWait` `connection`): the calls holding the connections tell of the
 *   node, each by its own outcome. Nor does a call that failed because this process is out of
 *   file descriptors (EMFILE/ENFILE, own-resources.ts): it is told to `onOwnShortage` instead.
 * - open: calls fail at once with BreakerOpenError (Retry-After = time left); after
 *   `reset_timeout_ms` it turns half-open. When writes the server refused while answering
 *   (`DependencyError.writesOnly`: read-only, out of disk) opened it, only writes are refused:
 *   reads pass as if closed, and a dependency failure of one of them makes it refuse reads too
 *   for the rest of the open spell; half-open, such reads pass too (`executeOrTrial` starts the
 *   trials meanwhile). Before, a master whose binlog disk was full refused its reads for every
 *   open spell (an outside check: about half of a shard's reads answered 503 while its writes
 *   failed). Writes that timed out refuse reads as any failure does: a node that hangs on
 *   everything times writes out first, and a read let through would wait the call timeout.
 * - half_open: at most `half_open_max_calls` probe calls run concurrently (others are refused);
 *   that many consecutive successes close it, any failure re-opens it. When timed-out writes
 *   opened it, only writes are probes (a read's success proves nothing about them) and other
 *   calls pass as if closed; a dependency failure of one of those re-opens it too.
 * - `executeOrTrial`: as `execute`, except that half-open it refuses the caller at once and lets
 *   background trial calls probe instead (one loop per breaker), for dependencies that can hang.
 *   When timed-out writes opened it, the trials are writes (`writeTrial`: a write that touches no
 *   caller's data), `half_open_max_calls` of them in a row closing it, and callers' reads pass
 *   meanwhile; so neither a node that hangs on everything (SIGSTOP) nor one that hangs on writes
 *   costs a caller the call timeout, and a breaker closes also on an instance that gets no
 *   writes. Without a `writeTrial`, one read trial that succeeds lets the callers' writes probe.
 * - every call is abandoned after `call_timeout_ms` and counts as a failure, except that the time
 *   this process did not run during the call (stall-watch.ts: STALL_MIN_MS or more) is given back
 *   once, up to `call_timeout_ms`: an outside check froze an instance for 35 s, and on SIGCONT the
 *   writes it had in flight all timed out at once and opened the master's breaker (642 requests
 *   answered 503 over the next 5 s while the master was fine). The cost: a dependency that really
 *   hangs across such a stall is reported that much later. An answer read in the event loop's
 *   turn right after the deadline still counts. A call that read
 *   `signal` of its argument sees it abort then, and the caller gets the timeout once that call
 *   settled, or ABANDON_GRACE_MS later at most: what the call does to stop (a write's KILL on
 *   the server) is done before its caller is told it failed. The AbortController is created only
 *   when a call reads `signal` (creating one per call was a measurable share of a cached read's
 *   CPU).
 *
 * - `slowFails` (a cache's calls): a success slower than half of `call_timeout_ms` counts as a
 *   failure (its caller keeps the answer), so a dependency that answers, but too slowly to be
 *   worth waiting for, opens the breaker like one that does not answer. Where the runtime tells
 *   the event loop's idle time (`loopIdleMs`), the time that counts is the time the loop waited
 *   for the answer: the time it was busy with other work is this process's, not the dependency's.
 *
 * Written by hand rather than with cockatiel 3.2's CircuitBreakerPolicy: that policy admits one
 * probe and closes on its first success (no N-success close, no N concurrent probes), and it
 * does not expose the time left while open, which Retry-After needs. Cockatiel's breaker and
 * backoff interfaces were checked for live settings (they can read settings per event) — the
 * half-open semantics were the blocker.
 */
import type { BreakerKind, BreakerSettings } from '../config/schema.js';
import {
  type AbandonReport,
  BreakerOpenError,
  CallStoppedError,
  CallTimeoutError,
  DependencyError,
} from './errors.js';
import { ownResourceShortage, type ShortageCode } from './own-resources.js';
import {
  type StallClock,
  stallAwareTimeout,
  stalledMs as watchedStalls,
  watchStalls,
} from './stall-watch.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** what a call is given: its abort signal, and what it may tell of itself (`hungBy`) */
export interface BreakerCall {
  /** aborts at the call timeout (created only when read) */
  readonly signal: AbortSignal;
  /** the call reached the dependency now (a database call: it has its connection) */
  sent(): void;
  /** the call committed a transaction that wrote: the dependency makes progress on writes */
  committed(): void;
}

/**
 * With the event loop's idle time known, a call whose answer took this share of
 * `call_timeout_ms` or more counts as slow however busy the loop was meanwhile (see `slowness`)
 */
export const BUSY_SLOW_SHARE = 0.9;

/** how long an aborted call that read `signal` may take to stop before its caller is answered */
export const ABANDON_GRACE_MS = 500;

/** the least an open breaker stays open after its client reported a connection restored */
export const RESTORED_MIN_OPEN_MS = 1000;

/** an aborted call that did not say how it stopped: assume the worst of both */
const UNCONFIRMED: AbandonReport = { mayHaveApplied: true, dependencyStuck: true };

export interface BreakerTransition {
  name: string;
  kind: BreakerKind;
  from: BreakerState;
  to: BreakerState;
  failures: number;
  reason: string;
}

export interface BreakerView {
  name: string;
  kind: BreakerKind;
  state: BreakerState;
  failures: number;
  settings: BreakerSettings;
  since: string;
  /** open or half-open after failed writes alone: reads pass, writes are refused or probe */
  writesOnly?: true;
}

export interface CircuitBreakerOptions {
  name: string;
  kind: BreakerKind;
  settings: () => BreakerSettings;
  onTransition?: (t: BreakerTransition) => void;
  /**
   * the clock of the open spell (open → half-open after `reset_timeout_ms`): `monotonicNow` by
   * default. It was `Date.now` before: a wall clock stepped back an hour (NTP, `date -s`) kept an
   * open Redis breaker open that hour more, its cache bypassed and its login throttle failing
   * open, long after Redis was back (an outside check with libfaketime); a step ahead half-opened
   * it early.
   */
  now?: () => number;
  /** the wall clock (default `Date.now`): only for `since` in `view()`, the time of the last transition */
  wallNow?: () => number;
  /**
   * a clock that never steps (default `performance.now`): a call's deadline is measured on it, so
   * a wall-clock step (NTP, a VM's clock re-synced) is not taken for a stall of this process
   */
  monotonicNow?: () => number;
  /** ms of [from, to] (on `monotonicNow`) this process did not run (default: stall-watch.ts) */
  stalledMs?: (from: number, to: number) => number;
  /**
   * ms this process's event loop has waited for I/O with nothing else to run, counted from any
   * fixed point (Node: `performance.nodeTiming.idleTime`); absent where the runtime does not
   * tell. With it, `slowFails` judges a call by the time the process waited on it (see there).
   */
  loopIdleMs?: () => number;
  /**
   * a call failed because this process is out of file descriptors (own-resources.ts: EMFILE,
   * ENFILE): not counted, told here (readiness, a counter, a warning)
   */
  onOwnShortage?: (code: ShortageCode, error: unknown) => void;
  /**
   * each call let through, once it ended: how (`ok`: an answer, or an error that is the caller's
   * own, as a duplicate key; `error`: a failure of the dependency; `timeout`: abandoned at
   * `call_timeout_ms`) and how long it took in seconds, on the monotonic clock. Calls the breaker
   * refused are not told (they never reached the dependency).
   */
  onCallEnded?: (outcome: CallOutcome, seconds: number) => void;
}

export const CALL_OUTCOMES = ['ok', 'error', 'timeout'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

export interface ExecuteOptions {
  /** errors for which this returns false are the caller's fault (e.g. a duplicate key) and count as success */
  isFailure?: (error: unknown) => boolean;
  /** the call changes state (a write transaction): its timeouts are counted apart (see above) */
  writes?: boolean;
  /**
   * A success after more than half of `call_timeout_ms` (less the time this process did not
   * run) counts as a failure; its caller still gets its answer. With `loopIdleMs`, the time is
   * the time the event loop waited, idle, while the call ran (the rest it was busy with other
   * work, and an answer that came meanwhile waited in this process), or the whole time once it
   * is over BUSY_SLOW_SHARE of the timeout (`slowness`). For a cache, whose slow answer is worth
   * less than a read of the database: a Redis answering each command in 200 ms (or one
   * paused, `CLIENT PAUSE`, answering now and then just before the timeout) kept its breaker
   * closed and every cached read that slow.
   */
  slowFails?: boolean;
}

export interface TrialOptions extends ExecuteOptions {
  /** a cheap call without effect (a PING, a read of a key nobody writes); `isFailure` judges it too */
  trial: () => Promise<unknown>;
  /**
   * The trial after timed-out writes opened the breaker: a write of no caller's data, which
   * stops itself when `signal` aborts (as a caller's write does). Absent: see `executeOrTrial`.
   */
  writeTrial?: (call: { readonly signal: AbortSignal }) => Promise<unknown>;
  /** called once each time a round of trials closed the breaker (the same function only once) */
  onClosedByTrials?: () => void;
}

/** a call's BreakerCall: the controller made only when `signal` is read */
class Call implements BreakerCall {
  controller: AbortController | undefined;
  /** when the call last told it was sent (`sent()`), on the breaker's clock */
  sentAt: number | undefined;

  constructor(
    private readonly clock: StallClock,
    private readonly commits: { lastAt: number },
  ) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  // the last time counts: a call run again on another connection was sent again then
  sent(): void {
    this.sentAt = this.clock.now();
  }

  committed(): void {
    this.commits.lastAt = this.clock.now();
  }
}

export class CircuitBreaker {
  readonly name: string;
  readonly kind: BreakerKind;
  private readonly settings: () => BreakerSettings;
  private readonly onTransition: (t: BreakerTransition) => void;
  private readonly now: () => number;
  private readonly wallNow: () => number;
  /** the clock of call deadlines and what stalled it (stall-watch.ts) */
  private readonly clock: StallClock;
  private readonly loopIdleMs: (() => number) | undefined;
  private readonly onOwnShortage: ((code: ShortageCode, error: unknown) => void) | undefined;
  private readonly onCallEnded: CircuitBreakerOptions['onCallEnded'];
  private current: BreakerState = 'closed';
  /**
   * failures less successes since the breaker last closed (never below 0): all but the timeouts
   * of writes; `writeFailures` those in a row. Open or half-open, a failed probe adds one
   */
  private failures = 0;
  /** when a closed breaker last counted a failure, and a hung write (its monotonic clock): see settingsChanged */
  private lastFailureAt = Number.NEGATIVE_INFINITY;
  private lastWriteFailureAt = Number.NEGATIVE_INFINITY;
  private writeFailures = 0;
  /** when a call last told that it committed a transaction that wrote (`call.committed()`) */
  private readonly commits = { lastAt: Number.NEGATIVE_INFINITY };
  /** which run of hung writes `writeFailures` counts: a new one each time the count goes back to 0 */
  private writeRun = 0;
  /** the breaker last opened on timed-out writes: half-open, only writes probe */
  private openedByWrites = false;
  /**
   * with `openedByWrites`: the writes were refused by a server that answered (`writesOnly`: read
   * only, out of disk), not timed out, and no read of this open spell failed as the node's fault:
   * callers' reads pass while open or half-open. Not after timeouts: a node that hangs on
   * everything (SIGSTOP, a blackholed path) times writes out first, and each read let through
   * would wait the call timeout (a review: 20 of 20 concurrent reads did, refused at once before)
   */
  private writesRefused = false;
  /** this half-open spell, a read trial succeeded: with `openedByWrites` and no write trial, callers' writes probe now */
  private trialPassed = false;
  private halfOpenSuccesses = 0;
  private probesInFlight = 0;
  /** the wall time of the last transition (shown as `since`), read from `wallNow` then */
  private sinceWallMs: number;
  /** when the breaker last opened, on `now` (monotonic) */
  private openedAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private retired = false;
  private trialsRunning = false;
  /** this open spell, a client reported its connection restored (connectionRestored): the reason */
  private restored: string | undefined;
  private readonly closedByTrials = new Set<() => void>();

  constructor({
    name,
    kind,
    settings,
    onTransition = () => {},
    monotonicNow = () => performance.now(),
    now = monotonicNow,
    wallNow = Date.now,
    stalledMs,
    loopIdleMs,
    onOwnShortage,
    onCallEnded,
  }: CircuitBreakerOptions) {
    this.onCallEnded = onCallEnded;
    this.name = name;
    this.kind = kind;
    this.settings = settings;
    this.onTransition = onTransition;
    this.now = now;
    this.wallNow = wallNow;
    if (!stalledMs) watchStalls();
    this.clock = { now: monotonicNow, stalledMs: stalledMs ?? watchedStalls };
    this.loopIdleMs = loopIdleMs;
    this.onOwnShortage = onOwnShortage;
    this.sinceWallMs = wallNow();
  }

  get state(): BreakerState {
    this.maybeHalfOpen();
    return this.current;
  }

  /** the live `call_timeout_ms` */
  callTimeoutMs(): number {
    return this.settings().call_timeout_ms;
  }

  /** ms until an open breaker turns half-open (0 when not open) */
  retryAfterMs(): number {
    if (this.state !== 'open') return 0;
    return Math.max(0, this.openedAt + this.openForMs() - this.now());
  }

  view(): BreakerView {
    const state = this.state;
    return {
      name: this.name,
      kind: this.kind,
      state,
      failures: Math.max(this.failures, this.writeFailures),
      settings: { ...this.settings() },
      since: new Date(this.sinceWallMs).toISOString(),
      ...(state !== 'closed' && this.readsPass(false) ? { writesOnly: true as const } : {}),
    };
  }

  /**
   * After a settings change: an open breaker re-arms its open→half-open timer (`reset_timeout_ms`);
   * a closed one whose count already reaches a lowered `failure_threshold` opens now, as the next
   * failure would have opened it (an operator lowers it to cut off a node that hangs: before, each
   * instance waited for one more failure, a call timeout, an outside check). Only while that
   * count's last failure is recent, at most the longer of `reset_timeout_ms` and `call_timeout_ms`
   * old (a hung node fails a caller once per call timeout): counts age only by successes, so a
   * breaker that sees little traffic may hold failures from long ago, which say nothing of the
   * node now (an open breaker would have tried it again by then). The hung writes and the other
   * failures are judged apart: a recent read failure says nothing of a write count's age.
   * Nothing else changes state.
   */
  settingsChanged(): void {
    if (this.current === 'open') this.armTimer();
    if (this.current !== 'closed') return;
    const { failure_threshold: threshold, reset_timeout_ms, call_timeout_ms } = this.settings();
    const now = this.clock.now();
    const recent = (at: number) => now - at <= Math.max(reset_timeout_ms, call_timeout_ms);
    if (this.writeFailures >= threshold && recent(this.lastWriteFailureAt)) {
      this.openedByWrites = true;
      this.writesRefused = false;
      this.transition(
        'open',
        `failure_threshold lowered to ${threshold}: ${this.writeFailures} write(s) in a row failed`,
      );
    } else if (this.failures >= threshold && recent(this.lastFailureAt)) {
      this.openedByWrites = false;
      this.transition(
        'open',
        `failure_threshold lowered to ${threshold}: ${this.failures} failure(s) counted`,
      );
    }
  }

  /**
   * Throws the BreakerOpenError `execute` would throw right now, without calling anything: lets a
   * caller skip costly work (hashing a password) ahead of a call that would be refused. With
   * `trials`: what `executeOrTrial(…, trials)` would throw, and it starts the background trials
   * as that would (else a breaker whose callers are all refused here would never close).
   */
  refuseIfOpen(trials?: TrialOptions): void {
    const state = this.state;
    if (state === 'open' && !this.readsPass(trials?.writes ?? false))
      throw new BreakerOpenError(this.name, this.retryAfterMs());
    if (state !== 'half_open') return;
    if (trials && this.readsPass(trials.writes ?? false)) {
      this.startTrials(trials);
      return;
    }
    if (trials && !this.passesHalfOpen(trials)) throw this.refuseAndTrial(trials);
    if (this.probes(trials?.writes ?? false) && this.probesInFlight >= this.settings().half_open_max_calls)
      throw new BreakerOpenError(this.name, 1000);
  }

  /** open or half-open, whether a read passes as if closed (`writesRefused`) */
  private readsPass(writes: boolean): boolean {
    return this.openedByWrites && this.writesRefused && !writes;
  }

  /** half-open, whether a call is a probe (counted against `half_open_max_calls`) */
  private probes(writes: boolean): boolean {
    return !this.openedByWrites || writes;
  }

  execute<T>(fn: (call: BreakerCall) => Promise<T>, options: ExecuteOptions = {}): Promise<T> {
    return this.run(fn, options, this.state);
  }

  /**
   * `execute` in the state the call was admitted in (`state`): `executeOrTrial` judged it in one
   * state, and the reset timeout may run out before the call is counted. Read again here, a
   * caller's write let through as "open" became half-open's probe and waited the call timeout
   * on a master still under a global read lock (a CI run), while background trials probe.
   */
  private async run<T>(
    fn: (call: BreakerCall) => Promise<T>,
    { isFailure = () => true, writes = false, slowFails = false }: ExecuteOptions,
    state: BreakerState,
  ): Promise<T> {
    const started = slowFails ? this.clock.now() : 0;
    const idleBefore = slowFails && this.loopIdleMs ? this.loopIdleMs() : undefined;
    const s = this.settings();
    const readPasses = state === 'open' && this.readsPass(writes);
    if (state === 'open' && !readPasses) throw new BreakerOpenError(this.name, this.retryAfterMs());
    const probe = state === 'half_open' && this.probes(writes);
    // open or half-open after timed-out or refused writes: a read passes, and its dependency
    // failure re-opens (refusing reads too)
    const passed = (state === 'half_open' && !probe) || readPasses;
    if (probe) {
      if (this.probesInFlight >= s.half_open_max_calls) throw new BreakerOpenError(this.name, 1000);
      this.probesInFlight++;
    }
    // one object per call, its methods on the prototype (no closures on every cached read)
    const call = new Call(this.clock, this.commits);
    const calledAt = this.onCallEnded ? this.clock.now() : 0;
    let outcome: CallOutcome = 'ok';
    let cancelDeadline = () => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    let grace: ReturnType<typeof setTimeout> | undefined;
    let aborted = false;
    let graceOver = false;
    const timeout = new Promise<never>((_, reject) => {
      const expire = () => {
        const error = new CallTimeoutError(this.name, s.call_timeout_ms);
        if (!call.controller) return reject(error);
        // the call stops itself on abort: let it finish doing so (a write's KILL on the server)
        // before the caller hears of the timeout, for at most ABANDON_GRACE_MS
        aborted = true;
        call.controller.abort(error);
        grace = setTimeout(() => {
          graceOver = true;
          reject(new CallTimeoutError(this.name, s.call_timeout_ms, UNCONFIRMED));
        }, ABANDON_GRACE_MS);
      };
      // the time this process did not run during the call is given back, once (the dependency
      // may have answered meanwhile, unread); then one more turn of the event loop: an answer
      // already received but not yet read settles the call before it is abandoned
      cancelDeadline = stallAwareTimeout(
        () => {
          timer = setTimeout(expire, 0);
        },
        s.call_timeout_ms,
        this.clock,
      );
    });
    /** the run of hung writes this call was counted in, if it was */
    let countedInRun: number | undefined;
    try {
      const running = fn(call);
      if (writes)
        // a write whose stop reported only after the grace that the node was not stuck (it
        // waited on a row lock; the kill's own connection was slow on a loaded box) was counted
        // as hung: that count is taken back while the breaker is still closed, in the same run
        // (after a success reset the count, what it holds is other writes')
        running.catch((error: unknown) => {
          if (graceOver && error instanceof CallStoppedError && !this.hungBy(error.report, call.sentAt))
            if (countedInRun !== undefined) this.forgiveHungWrite(countedInRun);
        });
      // a call that still succeeded while it stopped is a success: its effect took place
      const result = await Promise.race([running, timeout]);
      const slow = slowFails ? this.slowness(started, idleBefore, s.call_timeout_ms) : undefined;
      if (slow) this.recordFailure(probe || passed, false, new Error(slow));
      else this.recordSuccess(probe, writes);
      return result;
    } catch (caught) {
      // a call that failed once aborted failed because of the timeout; how it stopped says
      // whether its effect may still take place, and whether the dependency was stuck
      const error =
        aborted && !(caught instanceof CallTimeoutError)
          ? new CallTimeoutError(
              this.name,
              s.call_timeout_ms,
              caught instanceof CallStoppedError ? caught.report : UNCONFIRMED,
            )
          : caught;
      if (error instanceof CallTimeoutError) outcome = 'timeout';
      else if (isFailure(error) && !(error instanceof DependencyError && error.answered)) outcome = 'error';
      // this process out of descriptors (the socket never opened): says nothing of the node.
      // Looked for only in what would count as the node's failure (a conflict or a statement's
      // error passes here too, and is no shortage whatever it wraps)
      const shortage =
        error instanceof CallTimeoutError ||
        !isFailure(error) ||
        (error instanceof DependencyError && error.answered)
          ? undefined
          : ownResourceShortage(error);
      if (shortage) this.onOwnShortage?.(shortage, error);
      // a write stopped while it waited on its own row lock: says nothing of the node
      if (
        shortage ||
        (error instanceof CallTimeoutError &&
          error.abandon !== undefined &&
          !this.hungBy(error.abandon, call.sentAt)) ||
        (error instanceof DependencyError && error.busy)
      ) {
        // neither: a probe's slot is freed below, the counts stay as they were
      } else if (
        error instanceof CallTimeoutError ||
        (isFailure(error) && !(error instanceof DependencyError && error.answered))
      ) {
        const hungWrite =
          writes &&
          (error instanceof CallTimeoutError || (error instanceof DependencyError && error.writesOnly));
        if (hungWrite && this.current === 'closed') countedInRun = this.writeRun;
        this.recordFailure(probe || passed, hungWrite, error);
      } else this.recordSuccess(probe, writes);
      throw error;
    } finally {
      cancelDeadline();
      clearTimeout(timer);
      clearTimeout(grace);
      if (probe) this.probesInFlight--;
      // not once retired: its series were removed with it, and a call that ends after (a read
      // on a dead node, to its call timeout) would write them again (a review)
      if (!this.retired) this.onCallEnded?.(outcome, (this.clock.now() - calledAt) / 1000);
    }
  }

  /**
   * `execute`, except while half-open: then the caller is refused at once (BreakerOpenError) and
   * `trial` runs in the background, one call after the other, until the breaker closed or opened
   * again. A dependency that still hangs then costs no caller the call timeout each time the
   * reset timeout runs out. One trial loop per breaker, whichever caller started it (its `trial`
   * is used); every `onClosedByTrials` given meanwhile is called once when the loop closed it.
   */
  executeOrTrial<T>(fn: (call: BreakerCall) => Promise<T>, options: TrialOptions): Promise<T> {
    const state = this.state;
    if (state !== 'half_open' || this.passesHalfOpen(options)) return this.run(fn, options, state);
    if (this.readsPass(options.writes ?? false)) {
      // writes alone were refused: a read passes, as it did while open, and starts the trials
      // that tell when writes work again (an instance that gets no writes must close it too)
      this.startTrials(options);
      return this.run(fn, options, state);
    }
    return Promise.reject(this.refuseAndTrial(options));
  }

  /** the background trials (one loop per breaker); `onClosedByTrials` registered */
  private startTrials(options: TrialOptions): void {
    if (options.onClosedByTrials) this.closedByTrials.add(options.onClosedByTrials);
    if (!this.trialsRunning) void this.runTrials(options);
  }

  /** half-open, whether `executeOrTrial` lets the call through (as `execute`) */
  private passesHalfOpen({ writes, writeTrial }: TrialOptions): boolean {
    // opened by writes, once a read trial passed: reads pass; writes too unless write trials probe
    return this.trialPassed && !(writes && writeTrial);
  }

  /** half-open: starts the trials (one loop per breaker) and returns the caller's refusal */
  private refuseAndTrial(options: TrialOptions): BreakerOpenError {
    this.startTrials(options);
    return new BreakerOpenError(this.name, this.retryAfterMs());
  }

  /**
   * Why the call was slow (a failure's reason), when it took, this process's stalls excepted,
   * over half of `callTimeoutMs`; else undefined. With the event loop's idle time known (`idleBefore`), that is the
   * time it waited idle for the answer, or the call's time when that is over BUSY_SLOW_SHARE of
   * `callTimeoutMs`: under load on a 2-core box the loop of an instance was busy (no idle time
   * at all) for the whole 125–167 ms of cached reads whose Redis answered within 4 ms
   * (`redis-cli --latency`), and their breaker opened as slow 4–5 times in 30 s, sending 68–90 %
   * of the cached reads to the database. The cost: on an instance that busy, a dependency
   * answering between half and BUSY_SLOW_SHARE of the timeout is not seen as slow. Idle time
   * holds no stall (libuv drops the wait a SIGSTOP interrupted; a loop held busy is not idle):
   * stalls are taken from the wall time only.
   */
  private slowness(
    started: number,
    idleBefore: number | undefined,
    callTimeoutMs: number,
  ): string | undefined {
    const now = this.clock.now();
    const took = now - started - this.clock.stalledMs(started, now);
    const slow = `answered after ${Math.round(took)} ms, over`;
    if (idleBefore === undefined || !this.loopIdleMs)
      return took > callTimeoutMs / 2 ? `${slow} half of call_timeout_ms` : undefined;
    const waited = this.loopIdleMs() - idleBefore;
    if (waited > callTimeoutMs / 2)
      return `answered after ${Math.round(waited)} ms of waiting for it, over half of call_timeout_ms`;
    return took > callTimeoutMs * BUSY_SLOW_SHARE
      ? `${slow} ${BUSY_SLOW_SHARE} of call_timeout_ms`
      : undefined;
  }

  private async runTrials({ trial, writeTrial, isFailure, slowFails }: TrialOptions): Promise<void> {
    this.trialsRunning = true;
    try {
      while (this.state === 'half_open') {
        if (!(this.openedByWrites && this.trialPassed)) {
          await this.execute(() => trial(), { isFailure, slowFails });
          // opened by writes, a read that answers shows that reads may pass again, not writes
          if (this.openedByWrites && this.current === 'half_open') this.trialPassed = true;
        } else if (writeTrial) {
          // a probe: half_open_max_calls of them in a row close the breaker, a hung one opens it
          await this.execute(writeTrial, { isFailure, writes: true });
        } else {
          break; // the callers' writes probe from here
        }
      }
    } catch {
      // a failed trial opened the breaker again; the next caller after its reset timeout starts
      // the next round
    } finally {
      this.trialsRunning = false;
    }
    if (this.current !== 'closed') return;
    const callbacks = [...this.closedByTrials];
    this.closedByTrials.clear();
    for (const callback of callbacks) callback();
  }

  /**
   * Whether a write stopped at its timeout shows its node stuck: not when it reported a wait of
   * its own (`ownWait`: a row lock, a connection), nor when a call committed a transaction that
   * wrote (`call.committed()`) after this one was sent (`call.sent()`): the node was committing
   * writes meanwhile, so this one waited on something of its own that its stop could not tell,
   * most often a row lock released just as it was stopped (its write then ran on to its COMMIT,
   * and the kill found it gone: "may have applied"). An outside check: a row held 10 s of every
   * 12, PATCHed 15 times a second; at each release the waiters stopped in the last ~0.3 s (kills
   * are slower on a loaded box) were counted as hung, 5 in a row, and the master's breaker opened
   * for every tenant in 3 of 3 runs. A node stuck on writes (a global read lock, a full disk, a
   * stalled fsync) commits none; an answer that is no commit (a refusal, a rollback, a duplicate
   * key, a COMMIT of a transaction that wrote nothing) proves nothing, and a write its stop saw
   * waiting on the server itself (`serverWide`) is hung whatever committed (reviews). Left: a
   * node that commits now and then (a disk doing a group commit every few seconds) has most of
   * its timed-out writes excused.
   */
  private hungBy(report: AbandonReport, sentAt: number | undefined): boolean {
    if (report.dependencyStuck === false) return false;
    // seen waiting on the server itself: stuck, whatever committed before that wait
    if (report.serverWide) return true;
    return !(sentAt !== undefined && this.commits.lastAt > sentAt);
  }

  private recordSuccess(probe: boolean, writes: boolean): void {
    if (this.current === 'closed') {
      // one success takes back one failure, not all of them: a node that fails more calls than
      // it answers still opens it (see the class comment); a read shows nothing about writes
      if (this.failures > 0) this.failures--;
      if (writes) this.resetWriteFailures();
      return;
    }
    if (this.current === 'half_open' && probe) {
      this.halfOpenSuccesses++;
      if (this.halfOpenSuccesses >= this.settings().half_open_max_calls) {
        this.transition('closed', `${this.halfOpenSuccesses} successful probe(s)`);
      }
    }
  }

  /**
   * `counted`: a probe, or a call passed while half-open or open (not a late one from before);
   * `hungWrite`: a write that timed out, or that the node refused as read-only
   * (`DependencyError.writesOnly`): either way its reads may still answer
   */
  private recordFailure(counted: boolean, hungWrite: boolean, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (this.current === 'closed') {
      const threshold = this.settings().failure_threshold;
      if (hungWrite) this.lastWriteFailureAt = this.clock.now();
      else this.lastFailureAt = this.clock.now();
      if (hungWrite && ++this.writeFailures >= threshold) {
        this.openedByWrites = true;
        this.writesRefused = !(error instanceof CallTimeoutError);
        const how = error instanceof CallTimeoutError ? 'timed out' : 'were refused';
        this.transition('open', `${this.writeFailures} write(s) in a row ${how}: ${reason}`);
      } else if (!hungWrite && ++this.failures >= threshold) {
        this.openedByWrites = false;
        this.writesRefused = false;
        this.transition('open', reason);
      }
    } else if (this.current === 'half_open' && counted) {
      if (hungWrite) this.writeFailures++;
      else this.failures++;
      // anything but a hung write: the node fails more than writes now, and the background
      // trials (reads) can tell when it is back
      if (!hungWrite) this.openedByWrites = false;
      this.writesRefused = hungWrite && !(error instanceof CallTimeoutError);
      this.transition('open', `probe failed: ${reason}`);
    } else if (this.current === 'open' && counted && !hungWrite) {
      // a read passed while refused writes had opened it, and failed as the node's fault: the
      // node fails more than writes now; its reads are refused too for the rest of the spell.
      // It stays opened by writes: half-open, a read trial first, then write trials close it
      // (a read trial alone must not: a review)
      this.writesRefused = false;
    }
  }

  /** a write counted as hung in run `run` turned out to have waited on its own row lock: uncounted */
  private forgiveHungWrite(run: number): void {
    if (this.current === 'closed' && this.writeRun === run && this.writeFailures > 0) this.writeFailures--;
  }

  private resetWriteFailures(): void {
    if (this.writeFailures > 0) this.writeRun++;
    this.writeFailures = 0;
  }

  /**
   * The dependency's client reports a new connection that completed its handshake (ioredis
   * `ready`, an AMQP connection opened with its topology declared): an open breaker turns
   * half-open once it has been open RESTORED_MIN_OPEN_MS, or `call_timeout_ms` if longer (never
   * past `reset_timeout_ms`), instead of at the end of `reset_timeout_ms`, so its probes find out
   * soon whether calls pass. Before, a broker or Redis back after a blip of a second still
   * waited the whole reset time (5 s by default) with mail held and the cache bypassed (outside
   * checks). Not at once: a Redis that stalls in bursts (a slow disk, a blocking command) answers
   * a new connection's handshake between two stalls, and half-opening then closed the breaker
   * into the next stall about twice as often, callers waiting out call timeouts each time (a
   * review); and a call of the earlier spell still running ends by then, so it cannot count as
   * a probe of the next one. Closed or half-open: nothing changes; reported once, it holds for
   * this open spell only.
   */
  connectionRestored(reason: string): void {
    if (this.current !== 'open') return;
    this.restored = reason;
    this.armTimer();
    this.maybeHalfOpen();
  }

  /** how long this spell stays open: `reset_timeout_ms`, shortened by a connection restored */
  private openForMs(): number {
    const { reset_timeout_ms, call_timeout_ms } = this.settings();
    if (this.restored === undefined) return reset_timeout_ms;
    return Math.min(reset_timeout_ms, Math.max(RESTORED_MIN_OPEN_MS, call_timeout_ms));
  }

  private maybeHalfOpen(): void {
    if (this.current === 'open' && this.now() >= this.openedAt + this.openForMs()) {
      const { reset_timeout_ms } = this.settings();
      const early = this.restored !== undefined && this.now() < this.openedAt + reset_timeout_ms;
      this.transition('half_open', early ? this.restored! : 'reset timeout elapsed');
    }
  }

  /**
   * Its node was removed (BreakerRegistry.remove): no timer flips it any more and its transitions
   * are no longer reported (logged, counted), nor its calls timed. A call in flight still finishes on it. Before, a
   * removed shard's open breaker went on logging "breaker transition" open→half-open and feeding
   * `shardgate_breaker_transitions_total` after "breaker removed" (an outside check).
   */
  retire(): void {
    this.retired = true;
    clearTimeout(this.timer);
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    if (this.retired) return;
    const delay = Math.max(0, this.openedAt + this.openForMs() - this.now());
    this.timer = setTimeout(() => this.maybeHalfOpen(), delay + 5);
    // never keep a process alive just to flip a breaker
    if (typeof this.timer === 'object' && 'unref' in this.timer) this.timer.unref();
  }

  private transition(to: BreakerState, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    // two clocks: the wall time is shown (`since`), the monotonic one times the open spell
    this.sinceWallMs = this.wallNow();
    this.halfOpenSuccesses = 0;
    this.trialPassed = false;
    if (to === 'open') {
      this.openedAt = this.now();
      this.restored = undefined;
      this.armTimer();
    } else {
      clearTimeout(this.timer);
    }
    if (to === 'closed') {
      this.failures = 0;
      this.resetWriteFailures();
      this.openedByWrites = false;
      this.writesRefused = false;
    }
    if (this.retired) return;
    this.onTransition({
      name: this.name,
      kind: this.kind,
      from,
      to,
      failures: Math.max(this.failures, this.writeFailures),
      reason,
    });
  }
}
