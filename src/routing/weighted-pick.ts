/** Picks one item with probability proportional to its weight; items of weight <= 0 never. */
export function weightedPick<T>(
  items: readonly T[],
  weightOf: (item: T) => number,
  random = Math.random,
): T | undefined {
  let total = 0;
  for (const item of items) total += Math.max(0, weightOf(item));
  if (total <= 0) return undefined;
  let r = random() * total;
  for (const item of items) {
    const w = Math.max(0, weightOf(item));
    if (w <= 0) continue;
    if (r < w) return item;
    r -= w;
  }
  return items.filter((i) => weightOf(i) > 0).at(-1);
}
