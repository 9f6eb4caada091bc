import { describe, expect, it } from 'vitest';
import {
  followsPosition,
  gtidContains,
  gtidText,
  gtidUnion,
  parseBinlogState,
  parseGtid,
  writtenBy,
} from './gtid.js';

const maria = (t: string) => parseGtid('mariadb', t)!;
const mysql = (t: string) => parseGtid('mysql', t)!;

describe('MariaDB GTID positions', () => {
  it('parses lists and rejects junk', () => {
    expect(maria('0-11-42,1-12-7').flavour).toBe('mariadb');
    expect(parseGtid('mariadb', '')).toBeDefined();
    for (const bad of ['x', '0-11', '0-11-42,0-12-43', '0-11-4x', '0--1-2', "0-1-1'; DROP"]) {
      expect(parseGtid('mariadb', bad)).toBeUndefined();
    }
  });

  it('rejects numbers out of the server range (MASTER_GTID_WAIT would fail with error 1941)', () => {
    expect(parseGtid('mariadb', '4294967295-4294967295-18446744073709551615')).toBeDefined();
    for (const bad of [
      '4294967296-1-1',
      '0-4294967296-1',
      '0-11-18446744073709551616',
      '0-11-99999999999999999999',
    ]) {
      expect(parseGtid('mariadb', bad)).toBeUndefined();
    }
  });

  it('compares by seq per domain, ignoring the server id', () => {
    expect(gtidContains(maria('0-11-42'), maria('0-11-42'))).toBe(true);
    expect(gtidContains(maria('0-12-43'), maria('0-11-42'))).toBe(true);
    expect(gtidContains(maria('0-11-41'), maria('0-11-42'))).toBe(false);
    expect(gtidContains(maria('0-11-50'), maria('0-11-42,1-11-3'))).toBe(false);
    expect(gtidContains(maria('0-11-50,1-11-3'), maria('1-11-3'))).toBe(true);
    expect(gtidContains(maria(''), maria(''))).toBe(true);
    expect(gtidContains(maria(''), maria('0-1-1'))).toBe(false);
  });
});

describe('MySQL GTID sets', () => {
  const u1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
  const u2 = '4e11fa47-71ca-11e1-9e33-c80aa9429563';

  it('parses sets with intervals, tags and newlines', () => {
    expect(mysql(`${u1}:1-5:7,\n${u2}:1-3`).flavour).toBe('mysql');
    expect(parseGtid('mysql', `${u1}:tag_a:1-3`)).toBeDefined();
    expect(parseGtid('mysql', `${u1}:1-9223372036854775807`)).toBeDefined();
    for (const bad of [
      'nope:1-2',
      `${u1}`,
      `${u1}:5-2`,
      `${u1}:0`,
      `${u1}:tag`,
      `${u1}:1-9223372036854775808`,
    ]) {
      expect(parseGtid('mysql', bad)).toBeUndefined();
    }
  });

  it('checks interval coverage per uuid', () => {
    expect(gtidContains(mysql(`${u1}:1-10`), mysql(`${u1}:3-5`))).toBe(true);
    expect(gtidContains(mysql(`${u1}:1-5:7-10`), mysql(`${u1}:5-7`))).toBe(false);
    expect(gtidContains(mysql(`${u1}:1-5,${u1}:6-10`), mysql(`${u1}:5-7`))).toBe(true);
    expect(gtidContains(mysql(`${u1}:1-10`), mysql(`${u2}:1`))).toBe(false);
    expect(gtidContains(mysql(`${u1}:tag_a:1-3`), mysql(`${u1}:1-3`))).toBe(false);
  });

  it('never mixes flavours', () => {
    expect(gtidContains(maria('0-1-1'), mysql(`${u1}:1`))).toBe(false);
  });
});

describe('followsPosition', () => {
  it("MySQL: judges the UUIDs the master names; a replica's own transactions (its UUID) do not shut it out", () => {
    const m = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const r = '4f22ab58-71ca-11e1-9e33-c80aa9429563';
    // an ANALYZE TABLE on the replica wrote r:1 into its gtid_executed
    expect(followsPosition(mysql(`${m}:1-105`), mysql(`${m}:1-100,${r}:1`))).toBe(true);
    expect(followsPosition(mysql(`${m}:1-105`), mysql(`${m}:1-106`))).toBe(false);
    expect(followsPosition(mysql(`${m}:1-105`), mysql(`${r}:1-50`))).toBe(false); // another master's
    expect(followsPosition(mysql(`${m}:1-105`), mysql(''))).toBe(true);
  });

  it('MariaDB: contained, and written by a server the binlog holds that far', () => {
    const state = parseBinlogState('0-21-110')!;
    expect(followsPosition(maria('0-21-110'), maria('0-21-108'), state)).toBe(true);
    expect(followsPosition(maria('0-21-110'), maria('0-11-108'), state)).toBe(false);
    expect(followsPosition(maria('0-21-110'), maria('0-11-108'))).toBe(true); // numbers alone
    expect(followsPosition(maria('0-21-110'), maria('0-21-111'), state)).toBe(false);
  });
});

describe('MariaDB binlog state (writtenBy)', () => {
  it('parses every (domain, server) with its last sequence number, and rejects junk', () => {
    const state = parseBinlogState('0-11-272, 0-21-300,1-21-7')!;
    expect([...state]).toEqual([
      ['0-11', 272n],
      ['0-21', 300n],
      ['1-21', 7n],
    ]);
    expect(parseBinlogState('')?.size).toBe(0);
    for (const bad of ['x', '0-11', '0-11-4x']) expect(parseBinlogState(bad)).toBeUndefined();
  });

  it("takes a position whose last transaction per domain the binlog holds, under that server's id", () => {
    const state = parseBinlogState('0-11-272,0-21-300')!;
    expect(writtenBy(state, maria('0-21-299'))).toBe(true);
    expect(writtenBy(state, maria('0-11-272'))).toBe(true); // an earlier master's, replicated
    expect(writtenBy(state, maria(''))).toBe(true);
    // another master's transactions: a server the binlog never held, or past its last one
    expect(writtenBy(state, maria('0-12-107'))).toBe(false);
    expect(writtenBy(state, maria('0-11-273'))).toBe(false);
    expect(writtenBy(state, maria('0-21-300,1-21-1'))).toBe(false);
    // MySQL positions name their servers in the set: not judged here
    expect(writtenBy(state, mysql('3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5'))).toBe(true);
  });
});

describe('gtidUnion', () => {
  it('keeps the higher sequence per MariaDB domain, with its server id', () => {
    const u = gtidUnion(parseGtid('mariadb', '0-11-100,1-5-7')!, parseGtid('mariadb', '0-12-101,2-3-1')!);
    expect(gtidText(u)).toBe('0-12-101,1-5-7,2-3-1');
    expect(gtidContains(u, parseGtid('mariadb', '0-11-100')!)).toBe(true);
  });

  it('merges MySQL intervals so that many single commits stay one interval', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    let u = parseGtid('mysql', `${uuid}:1-5`)!;
    for (let n = 6; n <= 50; n++) u = gtidUnion(u, parseGtid('mysql', `${uuid}:${n}`)!);
    expect(gtidText(u)).toBe(`${uuid}:1-50`);
    expect(gtidText(gtidUnion(u, parseGtid('mysql', `${uuid}:60-61`)!))).toBe(`${uuid}:1-50:60-61`);
  });
});
