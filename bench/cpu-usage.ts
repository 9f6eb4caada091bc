/**
 * Where the CPU went during a run, from /proc: the time of each stack process (its whole process
 * group: the stack starts every process in its own group, e.g. RabbitMQ's beam under its script),
 * of this bench process and of extra pids, what the rest of the machine used ("other": processes
 * that are not part of this run, i.e. noise), and the machine's user/system/iowait/idle split.
 * Linux only. Processes are in % of one core (up to 100 × cores), the machine in % of all cores.
 *
 * Also how long the same processes' threads were ready to run but waited for a core (the
 * scheduler's run-queue delay, `/proc/<pid>/task/<tid>/schedstat`, second field, in ns), in %
 * of one core too: 300 % means three threads waiting on average all through the run. On a
 * saturated box this is where latency comes from that no process's own timings show. Threads
 * that ended during the run take their waits with them; without schedstat (a kernel built
 * without CONFIG_SCHED_INFO) there is no `waiting` in the report.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { topology } from '../stack/topology.js';
import { stackPid } from './machine.js';

export const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** the fields of a /proc/<pid>/stat line after "pid (comm) ": [0] is state(3), [11] utime(14) */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
}

export interface CpuSnapshot {
  at: number;
  /** process-group id → CPU ticks of the whole group; -pid → ticks of a non-leader process */
  groups: Map<number, number>;
  /** the same keys → ns their threads waited for a core; undefined without schedstat */
  waits: Map<number, number> | undefined;
  /**
   * pid → ns its threads waited for a core (the machine's total is summed per process: a group's
   * sum drops when one of its processes ends, which would hide the waits of the others)
   */
  processWaits: Map<number, number> | undefined;
  /** jiffies of /proc/stat's `cpu` line */
  machine: { user: number; system: number; iowait: number; idle: number; total: number };
}

export function stackProcessNames(): string[] {
  return [
    topology.etcd.name,
    topology.redis.name,
    topology.rabbitmq.name,
    topology.smtp.name,
    ...topology.shards.flatMap((s) => [s.master.name, ...s.replicas.map((r) => r.name)]),
    ...topology.apis.map((a) => a.id),
    topology.worker.name,
    topology.lbSync.name,
    topology.haproxy.name,
  ];
}

/** run-queue delay (ns) of a schedstat line: "<on cpu ns> <waited ns> <timeslices>" */
export function schedstatWait(line: string): number {
  const waited = Number(line.trim().split(/\s+/)[1]);
  return Number.isFinite(waited) ? waited : 0;
}

/** ns the threads of process `pid` waited for a core so far; undefined when it has gone */
function processWait(pid: string): number | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let sum = 0;
  for (const tid of tasks) {
    try {
      sum += schedstatWait(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
    } catch {
      // the thread ended meanwhile
    }
  }
  return sum;
}

const hasSchedstat = (() => {
  try {
    readFileSync('/proc/self/schedstat', 'utf8');
    return true;
  } catch {
    return false;
  }
})();

export function snapshot(): CpuSnapshot {
  const groups = new Map<number, number>();
  const waits = hasSchedstat ? new Map<number, number>() : undefined;
  const processWaits = hasSchedstat ? new Map<number, number>() : undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // state(3) ppid(4) pgrp(5) … utime(14) stime(15)
    const f = statFields(stat);
    const pgrp = Number(f[2]);
    const ticks = Number(f[11]) + Number(f[12]);
    groups.set(pgrp, (groups.get(pgrp) ?? 0) + ticks);
    if (pgrp !== Number(entry)) groups.set(-Number(entry), ticks);
    const waited = waits && processWait(entry);
    if (waits && waited !== undefined) {
      processWaits?.set(Number(entry), waited);
      waits.set(pgrp, (waits.get(pgrp) ?? 0) + waited);
      if (pgrp !== Number(entry)) waits.set(-Number(entry), waited);
    }
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = cpu;
  return {
    at: performance.now(),
    groups,
    waits,
    processWaits,
    machine: {
      user: user + nice,
      system: system + irq + softirq,
      iowait,
      idle,
      total: user + nice + system + idle + iowait + irq + softirq + steal,
    },
  };
}

export interface CpuReport {
  /** % of one core per stack process, `bench` (this process) and extras */
  processes: Record<string, number>;
  /** % of one core used by every other process of the machine during the run */
  other: number;
  /** % of all cores */
  machine: { user: number; system: number; iowait: number; idle: number };
  /**
   * how long threads waited for a core, in % of one core: per named process (all its threads)
   * and over every process of the machine (`all`); absent without schedstat
   */
  waiting?: { processes: Record<string, number>; all: number };
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot, extras: Record<string, number> = {}): CpuReport {
  const seconds = (b.at - a.at) / 1000;
  const pct = (ticks: number) => +((ticks / TICKS_PER_SECOND / seconds) * 100).toFixed(1);
  const processes: Record<string, number> = {};
  const named: [string, number | undefined][] = [
    ...stackProcessNames().map((n): [string, number | undefined] => [n, stackPid(n)]),
    ['bench', process.pid],
    ...Object.entries(extras),
  ];
  const waitPct = (ns: number) => +((Math.max(0, ns) / 1e9 / seconds) * 100).toFixed(1);
  const waiting: Record<string, number> = {};
  for (const [name, pid] of named) {
    if (!pid) continue;
    const key = b.groups.has(pid) ? pid : -pid;
    const after = b.groups.get(key);
    if (after === undefined) continue;
    processes[name] = pct(after - (a.groups.get(key) ?? 0));
    const waitedAfter = b.waits?.get(key);
    if (waitedAfter !== undefined) waiting[name] = waitPct(waitedAfter - (a.waits?.get(key) ?? 0));
  }
  let all = 0;
  for (const [key, ticks] of b.groups) if (key > 0) all += ticks - (a.groups.get(key) ?? 0);
  const ours = Object.values(processes).reduce((s, v) => s + v, 0);
  const total = b.machine.total - a.machine.total || 1;
  const share = (k: keyof CpuSnapshot['machine']) =>
    +(((b.machine[k] - a.machine[k]) / total) * 100).toFixed(1);
  const machine = {
    user: share('user'),
    system: share('system'),
    iowait: share('iowait'),
    idle: share('idle'),
  };
  // everything busy on the machine (kernel threads and interrupts included) minus what we named
  const busy = ((machine.user + machine.system) / 100) * cpus().length * 100;
  const other = +Math.max(0, Math.max(pct(all), busy) - ours).toFixed(1);
  if (!a.processWaits || !b.processWaits) return { processes, other, machine };
  let waitedAll = 0;
  // a process that started during the run counts from zero; one that ended, not at all
  for (const [pid, ns] of b.processWaits) waitedAll += Math.max(0, ns - (a.processWaits.get(pid) ?? 0));
  return { processes, other, machine, waiting: { processes: waiting, all: waitPct(waitedAll) } };
}
