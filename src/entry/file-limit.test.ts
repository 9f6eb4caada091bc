import { describe, expect, it } from 'vitest';
import { recordingLogger } from '../testing/recording-logger.js';
import { MIN_OPEN_FILES, parseSoftOpenFiles, softOpenFiles, warnIfFewOpenFiles } from './file-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            128                  4096                 files
Max locked memory         8388608              8388608              bytes
`;

describe('the soft limit on open files', () => {
  it('is read from a /proc/<pid>/limits text', () => {
    expect(parseSoftOpenFiles(LIMITS)).toBe(128);
    expect(parseSoftOpenFiles(LIMITS.replace('128   ', 'unlimited'))).toBeUndefined();
    expect(parseSoftOpenFiles('')).toBeUndefined();
  });

  it("is this process's on Linux, and warned about at start only below the minimum", () => {
    const soft = softOpenFiles();
    if (process.platform === 'linux') expect(soft).toBeGreaterThan(0);
    else expect(soft).toBeUndefined();
    const { logger, lines } = recordingLogger();
    warnIfFewOpenFiles(logger, 'API instance');
    expect(lines.length).toBe(soft !== undefined && soft < MIN_OPEN_FILES ? 1 : 0);
  });
});
