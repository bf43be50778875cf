/** The machine a run happened on, for the report: numbers mean little without it. */
import { statfsSync } from "node:fs";
import os from "node:os";

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  platform: string;
  kernel: string;
  /** 1-minute load average before the run started anything: other work skews every number. */
  loadAverage: number;
  /** Filesystem of the temporary directory (where the SQLite file and the Postfix queue live). */
  tmpFilesystem: string;
}

const FILESYSTEMS: Record<number, string> = {
  61267: "ext4",
  1481003842: "xfs",
  2435016766: "btrfs",
  16914836: "tmpfs",
  2035054128: "overlayfs",
  801189825: "zfs",
  26985: "nfs",
};

function filesystemOf(dir: string): string {
  try {
    const type = Number(statfsSync(dir).type);
    return FILESYSTEMS[type] ?? `type 0x${type.toString(16)}`;
  } catch {
    return "unknown";
  }
}

export function loadAverage(): number {
  return Math.round((os.loadavg()[0] ?? 0) * 100) / 100;
}

export function describeMachine(tmpDir: string): Machine {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    tmpFilesystem: filesystemOf(tmpDir),
    loadAverage: loadAverage(),
  };
}

export function machineLine(machine: Machine): string {
  return (
    `${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB RAM, ` +
    `Node ${machine.node}, ${machine.platform} ${machine.kernel}, temp dir on ${machine.tmpFilesystem}; ` +
    `load average ${machine.loadAverage} before the run`
  );
}
