/**
 * Line and column (both from 1) of an index in a text, for error messages a
 * user can follow in an editor. Computed on demand, on the error path only,
 * so parsers keep just an index. Columns count UTF-16 code units, like the
 * index itself; lines end at '\n' (a CRLF file counts the same).
 */
export function lineColumn(text: string, index: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let nl = text.indexOf('\n'); nl !== -1 && nl < index; nl = text.indexOf('\n', nl + 1)) {
    line++;
    lineStart = nl + 1;
  }
  return { line, column: index - lineStart + 1 };
}
