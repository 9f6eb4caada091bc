/**
 * One metric of a stack process as its /metrics shows it now (parsed by stack/metric-samples.ts).
 */
import { type Labels, metricValue } from '../../stack/metric-samples.js';

/**
 * The sum of the samples of `name` (named in full, `shardgate_…`) that carry `labels` on
 * `<base>/metrics`; 0 when there is none (a labelled counter has no sample before its first
 * increment). Throws when the scrape fails.
 */
export async function scrapeMetric(base: string, name: string, labels: Labels = {}): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return metricValue(text, name, labels) ?? 0;
}
