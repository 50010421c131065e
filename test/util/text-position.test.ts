import { describe, expect, it } from 'vitest';
import { lineColumn } from '../../src/util/text-position.ts';

describe('lineColumn', () => {
  it('counts from 1, lines ending at \\n (CRLF the same)', () => {
    const text = 'ab\ncd\r\nef';
    expect(lineColumn(text, 0)).toEqual({ line: 1, column: 1 });
    expect(lineColumn(text, 2)).toEqual({ line: 1, column: 3 }); // the '\n' itself ends line 1
    expect(lineColumn(text, 3)).toEqual({ line: 2, column: 1 });
    expect(lineColumn(text, 7)).toEqual({ line: 3, column: 1 });
    expect(lineColumn(text, text.length)).toEqual({ line: 3, column: 3 });
  });
});
