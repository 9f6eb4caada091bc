/**
 * Reading the Prometheus text exposition a stack process serves on /metrics, for the integration
 * tests and the bench: the samples of one metric, picked by labels. Not a validator (test/metrics.test.ts
 * checks the format): comment lines are skipped, a timestamp after the value is ignored, and a line
 * that does not parse as a sample is passed over.
 *
 * A metric is named in full as on its sample lines: with the API's `shardgate_` prefix and a
 * histogram's `_bucket` / `_sum` / `_count` suffix.
 */
export type Labels = Readonly<Record<string, string>>;

export interface MetricSample {
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const ESCAPE = /\\(.)/g;

function parseLabels(block: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of block.matchAll(LABEL))
    labels[m[1]!] = m[2]!.replace(ESCAPE, (_, c: string) => (c === 'n' ? '\n' : c));
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

/** The samples of `name` that carry every label of `labels` (they may carry more), in text order. */
export function metricSamples(text: string, name: string, labels: Labels = {}): MetricSample[] {
  const wanted = Object.entries(labels);
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = SAMPLE.exec(line);
    if (m?.[1] !== name) continue;
    const own = parseLabels(m[2] ?? '');
    if (wanted.every(([k, v]) => own[k] === v)) samples.push({ labels: own, value: parseValue(m[3]!) });
  }
  return samples;
}

/**
 * The sum of the samples of `name` that carry `labels` (the one series, when the labels name a
 * single one); undefined when there is none: a labelled counter has no sample before its first
 * increment, and a gauge whose collect failed none at all.
 */
export function metricValue(text: string, name: string, labels: Labels = {}): number | undefined {
  const samples = metricSamples(text, name, labels);
  return samples.length === 0 ? undefined : samples.reduce((sum, s) => sum + s.value, 0);
}
