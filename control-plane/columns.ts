/**
 * Table output: every column as wide as its widest cell, so a long id (ids go up to 63
 * characters) never pushes its row out of line. The last cell of a row is not padded, and no line
 * ends in blanks.
 */
export function alignColumns(rows: readonly (readonly string[])[], gap = '  '): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  return rows.map((row) =>
    row
      .map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell))
      .join(gap)
      .trimEnd(),
  );
}
