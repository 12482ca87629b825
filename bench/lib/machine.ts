import fs from 'node:fs';
import os from 'node:os';
import type { Db } from '../../src/db/index.ts';
import type { RedisHandle } from '../../src/redis.ts';

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  node: string;
  redis: string;
  postgres: string;
}

/** The machine's CPU time so far, all cores together, by /proc/stat's columns; undefined off Linux. */
export function cpuTimes(): number[] | undefined {
  try {
    return fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return undefined;
  }
}

/** Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every mainstream build). */
const TICKS_PER_SECOND = 100;

/** CPU time a process has used so far (user + system, all its threads), in ms; undefined off Linux or once it is gone. */
function processCpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces: count fields after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * Starts counting the CPU time of the processes: the function returned gives what they have used
 * since, together, in ms; undefined if any of them cannot be read.
 */
export function cpuMeter(pids: readonly number[]): () => number | undefined {
  const before = pids.map(processCpuMs);
  return () => {
    let sum = 0;
    for (const [i, pid] of pids.entries()) {
      const [b, a] = [before[i], processCpuMs(pid)];
      if (a === undefined || b === undefined) return undefined;
      sum += a - b;
    }
    return sum;
  };
}

export interface CpuShares {
  /** Share of all cores' time spent idle or waiting on I/O. */
  idle: number;
  /** Share the hypervisor gave to other guests. */
  steal: number;
}

/** How the machine's cores spent the time between two readings of cpuTimes. */
export function cpuShares(before: number[] | undefined, after: number[] | undefined): CpuShares | undefined {
  if (!before || !after) return undefined;
  const d = after.map((v, i) => v - (before[i] ?? 0));
  const total = d.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  // user nice system idle iowait irq softirq steal …
  return { idle: ((d[3] ?? 0) + (d[4] ?? 0)) / total, steal: (d[7] ?? 0) / total };
}

export const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(' / ');

function cpuModel(): string {
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1]!.trim();
  } catch {
    // Not Linux: os.cpus() still names it.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export async function describeMachine(db: Db, redis: RedisHandle): Promise<Machine> {
  const info = await redis.client.info('server');
  const { rows } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  return {
    cores: os.availableParallelism(),
    cpu: cpuModel(),
    memoryGiB: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown',
    postgres: rows[0]!.v,
  };
}
