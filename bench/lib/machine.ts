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
