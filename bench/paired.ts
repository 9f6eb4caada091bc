/**
 * `pairedSummary(a, b)`: two builds measured round by round in alternation (bench/ab.ts). Round i
 * of A and round i of B ran seconds apart, so they share the machine's mood of that moment;
 * comparing them pair by pair is what makes a change of a few percent visible on a VM whose
 * speed drifts by a fifth within minutes. Reports each side's mean, B's mean over A's, and how
 * many pairs B won, lost or tied (within `tie`, a relative difference).
 */
export interface PairedSummary {
  rounds: number;
  meanA: number;
  meanB: number;
  /** meanB / meanA − 1, e.g. 0.08 = B is 8 % higher */
  change: number;
  /** pairs where B is higher by more than `tie`, lower by more than `tie`, or within it */
  higher: number;
  lower: number;
  ties: number;
}

export function pairedSummary(a: readonly number[], b: readonly number[], tie = 0.02): PairedSummary {
  if (a.length !== b.length || a.length === 0)
    throw new Error('pairedSummary needs as many rounds of A as of B, at least one');
  const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  let higher = 0;
  let lower = 0;
  a.forEach((x, i) => {
    const d = b[i]! / x - 1;
    if (d > tie) higher++;
    else if (d < -tie) lower++;
  });
  const meanA = mean(a);
  const meanB = mean(b);
  return {
    rounds: a.length,
    meanA,
    meanB,
    change: meanB / meanA - 1,
    higher,
    lower,
    ties: a.length - higher - lower,
  };
}
