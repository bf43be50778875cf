/** Memory readings from /proc (Linux only; elsewhere they read as undefined and the report says "n/a"). */
import { readdirSync, readFileSync } from "node:fs";

function statusKb(pid: number, field: string): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Peak resident set size of one process over its life so far (VmHWM), in kB. */
export function peakRssKb(pid: number): number | undefined {
  return statusKb(pid, "VmHWM");
}

/** Proportional set size (shared pages split between their users), in kB. */
export function pssKb(pid: number): number | undefined {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const match = /^Pss:\s+(\d+) kB/m.exec(rollup);
    return match ? Number(match[1]) : undefined;
  } catch {
    return statusKb(pid, "VmRSS");
  }
}

/** Process ids whose process group is `pgid` (Postfix's master leads its own group). */
export function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name "(...)": state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Memory of a whole process group: the sum of its processes' PSS, in kB, and how many there were. */
export function groupPssKb(pgid: number): { kb: number; processes: number } {
  const pids = processGroup(pgid);
  let kb = 0;
  for (const pid of pids) kb += pssKb(pid) ?? 0;
  return { kb, processes: pids.length };
}

/** Samples a reading every `intervalMs` and keeps the highest; stop() returns it. */
export function samplePeak(read: () => number | undefined, intervalMs = 200): { stop(): number | undefined } {
  let peak: number | undefined;
  const take = () => {
    const value = read();
    if (value !== undefined && (peak === undefined || value > peak)) peak = value;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}

/** Read and write system calls a process has made so far (/proc/<pid>/io: syscr + syscw). */
export function ioSyscalls(pid: number): number | undefined {
  try {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    const reads = /^syscr:\s+(\d+)/m.exec(io);
    const writes = /^syscw:\s+(\d+)/m.exec(io);
    return reads && writes ? Number(reads[1]) + Number(writes[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in seconds (assumes the usual 100 Hz clock tick). */
export function cpuSeconds(pid: number): number | undefined {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds per thread of a process so far, by thread id (the main thread's id is the pid). */
export function threadCpuSeconds(pid: number): Map<number, number> {
  const threads = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return threads;
  }
  for (const tid of tids) {
    const seconds = statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
    if (seconds !== undefined) threads.set(Number(tid), seconds);
  }
  return threads;
}

/**
 * CPU seconds used so far by every process whose command name is `name` (e.g. the PostgreSQL
 * server's backends, which share the machine's cores with Mailroom), or undefined when none is seen.
 */
export function cpuSecondsOfCommand(name: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return undefined;
  }
  let total: number | undefined;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== name) continue;
    } catch {
      continue; // the process ended while we looked
    }
    const seconds = statCpuSeconds(`/proc/${entry}/stat`);
    if (seconds !== undefined) total = (total ?? 0) + seconds;
  }
  return total;
}

function statCpuSeconds(file: string): number | undefined {
  try {
    const stat = readFileSync(file, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // After "(comm)": state(0) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(11) stime(12)
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
