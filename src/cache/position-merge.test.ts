import { describe, expect, it } from 'vitest';
import { mergePositions } from './position-merge.js';

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '0fd4b3b6-0000-11e1-9e33-c80aa9429562';

describe('mergePositions', () => {
  it('MariaDB: the highest seq per domain, whichever raise came first', () => {
    expect(mergePositions('mariadb', '0-1-10,1-2-3', '0-1-9,2-3-1')).toBe('0-1-10,1-2-3,2-3-1');
  });

  it('MySQL: a raise that arrives after a newer one does not lower the version (the sets are united)', () => {
    // before: the later text replaced the stored one, 1-11 became 1-10
    expect(mergePositions('mysql', `${A}:1-11`, `${A}:1-10`)).toBe(`${A}:1-11`);
    expect(mergePositions('mysql', `${A}:1-5:9`, `${A}:6-7,${B}:1-3`)).toBe(`${B}:1-3,${A}:1-7:9`);
    expect(mergePositions('mysql', `${A.toUpperCase()}:1-2`, `${A}:3,${A}:tag_x:1-4`)).toBe(
      `${A}:1-3,${A}:tag_x:1-4`,
    );
  });

  it('MySQL: text that is no set, or a number past 15 digits, replaces what was there', () => {
    expect(mergePositions('mysql', 'not a set', `${A}:1-2`)).toBe(`${A}:1-2`);
    expect(mergePositions('mysql', `${A}:1-2`, `${A}:1-1234567890123456`)).toBe(`${A}:1-1234567890123456`);
    expect(mergePositions('mysql', undefined, `${A}:1-2`)).toBe(`${A}:1-2`);
  });
});
