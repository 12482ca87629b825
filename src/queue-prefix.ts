// QUEUE_PREFIX's claim on a Redis: one installation (one database) per prefix, held by each of
// its processes while it runs.
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ConfigError } from './config.ts';
import type { Queryable } from './db/index.ts';
import { keepSetting } from './settings.ts';

/** How long a claim on QUEUE_PREFIX lasts unrenewed: a crashed installation's claim lapses. */
export const CLAIM_MS = 90_000;
const RELEASE_WAIT_MS = 1_000;
/**
 * Takes or renews the claim (KEYS[1]) for installation ARGV[1], and notes process ARGV[2] among
 * its holders (KEYS[2], each with when its note lapses), for ARGV[3] ms.
 * @returns the other installation's id when it holds the claim, else nothing.
 */
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return false`;
/** Drops process ARGV[2]'s note, and the claim with it when no other live process holds it. */
const RELEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 and redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * The processes of installation `id` (the database's) that renewed their note (claimQueuePrefix)
 * and have not lapsed, under whatever QUEUE_PREFIX they run on this Redis: each prefix's claim
 * names its installation. One that crashed is counted until its note lapses (CLAIM_MS).
 */
export async function runningProcesses(client: Redis, id: string): Promise<{ running: number; prefixes: string[] }> {
  const [seconds, micros] = (await client.time()) as [number | string, number | string];
  const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  let running = 0;
  const prefixes: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', '*:installation', 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if ((await client.get(key)) !== id) continue;
      const n = await client.zcount(`${key}:processes`, `(${now}`, '+inf');
      if (n > 0) {
        running += n;
        prefixes.push(key.slice(0, -':installation'.length));
      }
    }
  } while (cursor !== '0');
  return { running, prefixes };
}

/**
 * One installation (one database) per QUEUE_PREFIX on a Redis: two would take each other's jobs
 * (a job's id is its delivery's id) and skip them, finding no such delivery in their own database,
 * so every email would wait for a sweeper. Each web and worker process holds the claim
 * `<prefix>:installation`, the database's installation id, and renews it; a process of another
 * installation refuses to start while it is held, and the claim lasts until the last process that
 * holds it stops (or 90 s after it crashed). Redis restarted empty: the next renewal claims it again.
 * Processes of the same installation running under another prefix are warned of (`elsewhere`).
 * @returns what releases the claim when the process stops.
 * @throws ConfigError naming QUEUE_PREFIX.
 */
export async function claimQueuePrefix(db: Queryable, client: Redis, prefix: string, log: Pick<Logger, 'error' | 'warn'>): Promise<{ release(): Promise<void>; elsewhere: Promise<string[]> }> {
  const id = await keepSetting(db, 'installation', crypto.randomUUID());
  const key = `${prefix}:installation`;
  // Every process of the installation notes itself beside the claim, so that one stopping (or
  // failing to start) leaves the claim to the others instead of releasing it under them.
  const holders = `${key}:processes`;
  const self = crypto.randomUUID();
  /** @returns the id of another installation holding the claim, or undefined when it is ours. */
  const claim = async (): Promise<string | undefined> =>
    ((await client.eval(CLAIM, 2, key, holders, id, self, String(CLAIM_MS))) as string | null) ?? undefined;
  if (await claim()) {
    throw new ConfigError(
      `QUEUE_PREFIX: "${prefix}" is in use on this Redis by another Appeal installation (another database); the two would take ` +
        `each other's jobs. Give each installation its own QUEUE_PREFIX. If this installation's database was replaced, the old ` +
        `claim lapses ${CLAIM_MS / 1000} s after the last process that used it stopped.`,
    );
  }
  const renew = setInterval(() => {
    claim().then(
      (other) => other && log.error({ prefix }, 'another Appeal installation took this QUEUE_PREFIX while this one runs: give each its own'),
      () => undefined,
    );
  }, CLAIM_MS / 3);
  renew.unref();
  // A web process started on another machine without this QUEUE_PREFIX (with the default, say)
  // shares no queue with the rest: what it queues waits minutes for a sweeper here, and its jobs
  // stay in Redis. Not waited for: the search goes through every key of a busy Redis.
  const elsewhere = runningProcesses(client, id).then(({ prefixes }) => {
    const others = prefixes.filter((p) => p !== prefix);
    if (others.length) {
      log.warn(
        { prefix, others },
        `processes of this database also run under QUEUE_PREFIX ${others.map((p) => `"${p}"`).join(', ')}: they share no queue with this one ("${prefix}"), ` +
          'so the emails each queues wait for a sweeper on the other side, minutes late, and leave jobs behind. Give every web and worker process of one installation the same QUEUE_PREFIX ' +
          '(a copy of this database run beside it on purpose, a restored backup say, is told this too: there, each its own prefix is right)',
      );
    }
    return others;
  }, () => []);
  return {
    elsewhere,
    async release() {
      clearInterval(renew);
      // Not while Redis is away: the client would hold the command, and the process its stop, until
      // it came back. The claim then lapses on its own.
      if (client.status !== 'ready') return;
      await Promise.race([client.eval(RELEASE, 2, key, holders, id, self).catch(() => undefined), sleep(RELEASE_WAIT_MS, undefined, { ref: false })]);
    },
  };
}
