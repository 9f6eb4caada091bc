/**
 * The metrics surface the runtime-neutral code uses. Each module declares its own families
 * through these factories (idempotent by name); `prom-metrics.ts` backs them with prom-client,
 * `createNoopMetrics()` with nothing (unit tests, or a runtime without a scrape endpoint).
 */
export type Labels = Record<string, string | number>;

export interface CounterHandle {
  inc(labels?: Labels, value?: number): void;
}
export interface GaugeHandle {
  set(labels: Labels, value: number): void;
  inc(labels?: Labels, value?: number): void;
  dec(labels?: Labels, value?: number): void;
  /** forget every series: the family is exposed without values until the next `set` */
  reset(): void;
}
export interface HistogramHandle {
  observe(labels: Labels, value: number): void;
  /** forget the series of these labels (a node removed from the topology) */
  remove(labels: Labels): void;
}

export interface MetricDef {
  name: string;
  help: string;
  labelNames?: string[];
}

export interface Metrics {
  counter(def: MetricDef): CounterHandle;
  gauge(def: MetricDef & { collect?: (g: GaugeHandle) => void | Promise<void> }): GaugeHandle;
  histogram(def: MetricDef & { buckets?: number[] }): HistogramHandle;
  /** Prometheus text exposition */
  render(): Promise<{ contentType: string; body: string }>;
}

export function createNoopMetrics(): Metrics {
  const handle = { inc() {}, set() {}, dec() {}, reset() {}, observe() {}, remove() {} };
  return {
    counter: () => handle,
    gauge: () => handle,
    histogram: () => handle,
    render: async () => ({ contentType: 'text/plain; version=0.0.4', body: '' }),
  };
}
