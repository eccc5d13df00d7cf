/**
 * CPU time of a process (or of it and its descendants: nginx's workers under its master), how
 * long its main thread waited for a CPU, and how busy the whole machine was, read from Linux's
 * `/proc`: how much of the machine each part of a benchmark used during a phase, and whether
 * it was starved. Elsewhere it reports nothing rather than guessing.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** `getconf CLK_TCK` on every Linux the project runs on. */
const TICKS_PER_SECOND = 100;

interface StatLine {
  ppid: number;
  /** utime + stime, in ticks. */
  ticks: number;
}

function readStat(pid: number): StatLine | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ")".
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ppid) && Number.isFinite(ticks) ? { ppid, ticks } : null;
  } catch {
    return null;
  }
}

/** CPU milliseconds used so far by `pid` (all its threads); null when /proc cannot tell. */
function processCpuMs(pid: number): number | null {
  const stat = readStat(pid);
  return stat === null ? null : (stat.ticks * 1000) / TICKS_PER_SECOND;
}

/** `pid` and every live descendant (from the parent id in each process's `/proc/<pid>/stat`). */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return [pid];
  }
  for (const entry of entries) {
    const stat = readStat(Number(entry));
    if (stat === null) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const queue = [pid];
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** The sum of `read` over the processes; null when the first (the root) cannot be read. */
function sumOver(pids: readonly number[], read: (pid: number) => number | null): number | null {
  let total: number | null = null;
  for (const [at, pid] of pids.entries()) {
    const value = read(pid);
    if (value === null && at === 0) return null;
    total = (total ?? 0) + (value ?? 0);
  }
  return total;
}

/**
 * Milliseconds the process's main thread (a Node.js event loop, an nginx worker) has spent
 * runnable but waiting for a CPU, from `/proc/<pid>/schedstat`: how much a busy machine held it
 * back. Null when unknown.
 */
function runQueueWaitMs(pid: number): number | null {
  try {
    const wait = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
    return Number.isFinite(wait) ? wait / 1e6 : null;
  } catch {
    return null;
  }
}

/** Busy and total jiffies of the whole machine (`/proc/stat`; steal counts as busy: another VM had the CPU). */
function machineJiffies(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1, 9).map(Number) ?? [];
    const total = fields.reduce((sum, value) => sum + value, 0);
    // user nice system idle iowait irq softirq steal (guest time is already in user): idle and iowait are the idle ones.
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return total > 0 ? { busy: total - idle, total } : null;
  } catch {
    return null;
  }
}

export interface CpuSnapshot {
  /** `performance.now()` when taken. */
  at: number;
  /** CPU ms so far per named process tree (null: /proc could not tell). */
  cpuMs: Record<string, number | null>;
  /** Run-queue wait so far of each named process's main thread, ms. */
  waitMs: Record<string, number | null>;
  machine: { busy: number; total: number } | null;
}

export interface ProcessEntry {
  pid: number | undefined;
  /** Count the descendants too (nginx's workers under its master). */
  tree: boolean;
}

export function cpuSnapshot(processes: ReadonlyMap<string, ProcessEntry>): CpuSnapshot {
  const cpuMs: Record<string, number | null> = {};
  const waitMs: Record<string, number | null> = {};
  for (const [name, entry] of processes) {
    if (entry.pid === undefined) continue;
    const pids = entry.tree ? processTree(entry.pid) : [entry.pid];
    cpuMs[name] = sumOver(pids, processCpuMs);
    waitMs[name] = sumOver(pids, runQueueWaitMs);
  }
  return { at: performance.now(), cpuMs, waitMs, machine: machineJiffies() };
}

export interface CpuUse {
  wallMs: number;
  /** CPU ms each process used (processes absent from either snapshot are left out). */
  cpuMs: Record<string, number>;
  /** Run-queue wait of each process's main thread, ms. */
  waitMs: Record<string, number>;
  /** Busy share of the whole machine (all cores, every user), 0–1; null when unknown. */
  machineBusy: number | null;
}

export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const delta = (a: Record<string, number | null>, b: Record<string, number | null>) => {
    const out: Record<string, number> = {};
    for (const [name, end] of Object.entries(b)) {
      const start = a[name];
      if (typeof start === 'number' && typeof end === 'number') out[name] = end - start;
    }
    return out;
  };
  const machine = before.machine !== null && after.machine !== null && after.machine.total > before.machine.total ? (after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total) : null;
  return { wallMs: after.at - before.at, cpuMs: delta(before.cpuMs, after.cpuMs), waitMs: delta(before.waitMs, after.waitMs), machineBusy: machine };
}
