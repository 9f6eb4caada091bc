import { describe, expect, it } from 'vitest';
import { gtidsAhead } from './writable-master.js';

describe('gtidsAhead (received transactions a replica has not applied)', () => {
  it('names the domains whose received position is past the applied one', () => {
    expect(gtidsAhead('0-21-19723', '0-21-19723')).toEqual([]);
    expect(gtidsAhead('0-21-19723', '0-21-19700')).toEqual(['0-21-19723']);
    expect(gtidsAhead('0-21-5,1-22-9', '1-22-9,0-21-5')).toEqual([]);
    expect(gtidsAhead('0-21-5,1-22-10', '0-21-5,1-22-9')).toEqual(['1-22-10']);
    // nothing applied yet in a domain
    expect(gtidsAhead('2-30-1', '0-21-5')).toEqual(['2-30-1']);
    expect(gtidsAhead('0-21-5', '')).toEqual(['0-21-5']);
  });

  it('ignores what is not a position', () => {
    expect(gtidsAhead('', '0-21-5')).toEqual([]);
    expect(gtidsAhead('junk', '0-21-5')).toEqual([]);
    expect(gtidsAhead('0-21-5', 'junk')).toEqual(['0-21-5']);
  });
});
