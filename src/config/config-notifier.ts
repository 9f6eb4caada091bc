/**
 * Shared bookkeeping of the config stores: the validated state, listeners and status fields.
 * A listener that throws is reported through `onListenerError` and does not stop the others.
 */
import { type ConfigChange, ConfigState, type ConfigStateOptions } from './config-state.js';
import type { ConfigListener, ConfigStatus } from './interface.js';

export class ConfigNotifier {
  readonly state: ConfigState;
  loaded = false;
  connected = false;
  disconnectedSince: string | undefined;
  lastError: string | undefined;
  refused: string | undefined;
  refusedSince: string | undefined;
  loadedAt: string | undefined;
  lastChangeAt: string | undefined;
  private listeners = new Set<ConfigListener>();
  /** the config revision the listeners were last told of */
  private publishedRevision = -1;

  constructor(
    private readonly source: ConfigStatus['source'],
    private readonly onListenerError: (error: unknown) => void = () => {},
    stateOptions: ConfigStateOptions = {},
  ) {
    this.state = new ConfigState(stateOptions);
  }

  subscribe(listener: ConfigListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Record the outcome of a load or change and tell the listeners: on a change, and also when
   * only the config revision moved (a put of the same value, or of a rejected one), with no
   * changes, so a listener that reports the revision (the instance registration) keeps up.
   */
  publish(changes: ConfigChange[], { initial = false }: { initial?: boolean } = {}): void {
    const now = new Date().toISOString();
    if (initial) {
      this.loaded = true;
      this.loadedAt = now;
    }
    const revision = this.state.snapshot.revision;
    const moved = revision !== this.publishedRevision;
    this.publishedRevision = revision;
    if (changes.length === 0 && !initial && !moved) return;
    if (changes.length > 0 || initial) this.lastChangeAt = now;
    for (const listener of this.listeners) {
      try {
        listener(this.state.snapshot, changes);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  status(): ConfigStatus {
    return {
      loaded: this.loaded,
      revision: this.state.snapshot.revision,
      rejected: this.state.rejected,
      source: this.source,
      connected: this.connected,
      disconnectedSince: this.disconnectedSince,
      lastError: this.lastError,
      refused: this.refused,
      refusedSince: this.refusedSince,
      loadedAt: this.loadedAt,
      lastChangeAt: this.lastChangeAt,
    };
  }
}
