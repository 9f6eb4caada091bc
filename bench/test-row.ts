/** A bench result row for unit tests: 6 s at `rps`, no errors, the given fields over the defaults. */
import type { Row } from './report.js';

export function testRow(over: Partial<Row> & Pick<Row, 'key' | 'via' | 'rps'>): Row {
  return {
    seconds: 6,
    requests: over.rps * 6,
    p50: 1,
    p95: 2,
    p99: 3,
    max: 4,
    non2xx: 0,
    socketErrors: 0,
    errors: 0,
    statusCodes: { 200: over.rps * 6 },
    generatorCpuPercent: 10,
    scenario: over.key,
    kind: 'read',
    mode: 'closed loop',
    connections: 32,
    ratio: 1,
    ...over,
  };
}
