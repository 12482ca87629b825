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
