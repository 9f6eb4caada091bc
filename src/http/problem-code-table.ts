/**
 * The "Problem codes" table of docs/http-api.md, read from the document's text: each row's
 * statuses and the codes it names. Its tests hold the code to it (http/problem-codes.test.ts: every
 * code the source answers is in it; routes/operation-codes.test.ts: every code an operation of
 * /openapi.json lists is in it, with that status). Pure: the caller reads the file.
 */

export interface ProblemCodeRow {
  /** the statuses of the row's first cell (`501, 502, 503, 504` is four); none for `any other` */
  statuses: number[];
  /** the codes the row's second cell names in backticks */
  codes: string[];
}

const HEADING = '\n## Problem codes\n';

/** the rows of the "## Problem codes" table of `markdown` (docs/http-api.md); throws without one */
export function problemCodeRows(markdown: string): ProblemCodeRow[] {
  const start = markdown.indexOf(HEADING);
  if (start < 0) throw new Error('docs/http-api.md has no "## Problem codes" section');
  // up to the next heading of its level or above, or the end of the file
  const from = start + HEADING.length;
  const end = markdown.slice(from).search(/^#{1,2} /m);
  const section = markdown.slice(start, end < 0 ? undefined : from + end);
  // the table's rows, past its header and rule
  return section
    .split('\n')
    .filter((l) => l.startsWith('| '))
    .slice(1)
    .map((line) => {
      const [, status = '', code = ''] = line.split('|');
      return {
        statuses: [...status.matchAll(/\b\d{3}\b/g)].map((m) => Number(m[0])),
        codes: [...code.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!),
      };
    })
    .filter((row) => row.codes.length > 0);
}
