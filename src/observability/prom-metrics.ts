/**
 * prom-client backing of `Metrics`: one Registry per process (no global default registry), the
 * default Node metrics (including `nodejs_eventloop_lag_seconds`) and the families modules declare.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { replaceFdGauges } from './fd-gauges.js';
import type { CounterHandle, GaugeHandle, HistogramHandle, Labels, MetricDef, Metrics } from './metrics.js';
import { renderBatch } from './render-batch.js';

function gaugeHandle(g: Gauge): GaugeHandle {
  return {
    set: (labels: Labels, value: number) => g.set(labels, value),
    inc: (labels: Labels = {}, value = 1) => g.inc(labels, value),
    dec: (labels: Labels = {}, value = 1) => g.dec(labels, value),
    reset: () => g.reset(),
  };
}

export function createPromMetrics({
  prefix = 'shardgate_',
  defaultLabels = {},
  softOpenFiles = () => undefined,
}: {
  prefix?: string;
  defaultLabels?: Record<string, string>;
  /** the soft limit on open files, shown as `process_max_fds`, and as `process_open_fds` when out of them (fd-gauges.ts) */
  softOpenFiles?: () => number | undefined;
} = {}): Metrics & {
  registry: Registry;
} {
  const registry = new Registry();
  registry.setDefaultLabels(defaultLabels);
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  replaceFdGauges(registry, { softLimit: softOpenFiles });
  const made = new Map<string, unknown>();
  const once = <T>(name: string, make: () => T): T => {
    if (!made.has(name)) made.set(name, make());
    return made.get(name) as T;
  };
  // calls arriving together share one rendering (render-batch.ts: a flood of scrapes)
  const render = renderBatch(async () => ({
    contentType: registry.contentType,
    body: await registry.metrics(),
  }));
  return {
    registry,
    counter(def: MetricDef): CounterHandle {
      const name = prefix + def.name;
      return once(name, () => {
        const c = new Counter({
          name,
          help: def.help,
          labelNames: def.labelNames ?? [],
          registers: [registry],
        });
        return { inc: (labels: Labels = {}, value = 1) => c.inc(labels, value) };
      });
    },
    gauge(def): GaugeHandle {
      const name = prefix + def.name;
      return once(name, () => {
        const collect = def.collect;
        const g: Gauge = new Gauge({
          name,
          help: def.help,
          labelNames: def.labelNames ?? [],
          registers: [registry],
          ...(collect ? { collect: () => collect(gaugeHandle(g)) } : {}),
        });
        return gaugeHandle(g);
      });
    },
    histogram(def): HistogramHandle {
      const name = prefix + def.name;
      return once(name, () => {
        const h = new Histogram({
          name,
          help: def.help,
          labelNames: def.labelNames ?? [],
          buckets: def.buckets ?? [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers: [registry],
        });
        return {
          observe: (labels: Labels, value: number) => h.observe(labels, value),
          remove: (labels: Labels) => h.remove(labels),
        };
      });
    },
    render,
  };
}
