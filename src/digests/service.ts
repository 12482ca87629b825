import type { Db, Queryable } from '../db/index.ts';
import { DIGEST_PRIORITY, enqueueDeliveries, type Queues } from '../queues.ts';
import * as q from './queries.ts';

/**
 * Signers one digest letter carries at most; more waiting go in further letters of the same run.
 */
export const DIGEST_MAX_SIGNERS = 250;

/**
 * And about as many bytes (SIGNER_BYTES in queries.ts weighs each signer): relays commonly refuse
 * a message past 10 MB, and then every signer in it is lost (a 552 is final), and a worker builds
 * the whole message in memory. By count alone, 250 signers whose notes were 2,000 line breaks made
 * an 18 MB letter, which the worker's 128 MB heap could not build.
 */
export const DIGEST_MAX_BYTES = 4_000_000;

/**
 * When the next digest goes: at the campaign's hour today; once that hour has passed with none made
 * today, at the next quarter hour (digests are made on the quarter hours of the clock); after one
 * today, tomorrow at the hour. `late`: today's hour has passed and it goes at `at`, the next quarter.
 */
export function nextDigestAt(digestHour: number, lastDigestAt: Date | null, now = new Date()): { at: Date; tomorrow: boolean; late: boolean } {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const hour = today + digestHour * 3_600_000;
  const tomorrow = { at: new Date(hour + 86_400_000), tomorrow: true, late: false };
  if (lastDigestAt && lastDigestAt.getTime() >= today) return tomorrow;
  if (now.getTime() < hour) return { at: new Date(hour), tomorrow: false, late: false };
  const quarter = 15 * 60_000;
  const next = new Date(Math.ceil((now.getTime() + 1) / quarter) * quarter);
  // The midnight check is the next day's: it sends only once that day's hour comes.
  if (next.getTime() >= today + 86_400_000) return tomorrow;
  return { at: next, tomorrow: false, late: true };
}

/** When the next digest goes (nextDigestAt), as the console says it. */
export function nextDigestWords(digestHour: number, lastDigestAt: Date | null, now = new Date()): string {
  const { at, tomorrow, late } = nextDigestAt(digestHour, lastDigestAt, now);
  const hour = `${digestHour}:00 UTC`;
  if (tomorrow) return `tomorrow at ${hour}`;
  if (!late) return `at ${hour}`;
  return `at ${at.getUTCHours()}:${String(at.getUTCMinutes()).padStart(2, '0')} UTC (today's hour, ${hour}, has passed)`;
}

export interface DigestRun {
  digestId: number;
  campaignId: number;
  signatures: number;
  deliveryIds: number[];
}

/**
 * Creates a campaign's digest for the day inside `tx`: claims every confirmed signer not yet in a
 * digest, `max` to a letter, and inserts one letter per target for each part. Claims and letters
 * commit together, so a crash leaves either all or none, and a signer is in exactly one digest.
 * The parts are made together so that each knows how many there are: a letter says it is part 2
 * of 3, and an official can tell the day's letters belong together and whether one is missing.
 * @returns the parts, in order; null when the campaign is not due or has no new signer (nothing is sent).
 */
export async function createDigest(tx: Queryable, campaignId: number, now: Date, max = DIGEST_MAX_SIGNERS, maxBytes = DIGEST_MAX_BYTES): Promise<DigestRun[] | null> {
  if (!(await q.lockDueCampaign(tx, campaignId, now, max))) return null;
  const parts = await q.claimDigestParts(tx, campaignId, now, max, maxBytes);
  // lockDueCampaign saw a waiting signer and holds the campaign's lock, so this is a safeguard.
  if (parts.length === 0) throw new Error(`digest for campaign ${campaignId}: no signer to claim`);
  const byPart = new Map(parts.map((p) => [p.id, [] as number[]]));
  for (const letter of await q.insertDigestDeliveries(tx, campaignId, parts.map((p) => p.id))) byPart.get(letter.source_id)!.push(letter.id);
  return parts.map(({ id, signatures }) => ({ digestId: id, campaignId, signatures, deliveryIds: byPart.get(id)! }));
}

/**
 * The maintenance task: the day's digest of every due campaign, each campaign's in its own
 * transaction, then its letters enqueued. Run twice, or at once in two processes, it sends
 * nothing twice; a crash after a commit leaves queued letters that the sweeper enqueues.
 */
export async function runDueDigests(db: Db, queues: Pick<Queues, 'send'>, now = new Date(), max = DIGEST_MAX_SIGNERS, maxBytes = DIGEST_MAX_BYTES): Promise<DigestRun[]> {
  const runs: DigestRun[] = [];
  for (const campaignId of await q.listDueCampaigns(db, now, max)) {
    const parts = await db.transaction((tx) => createDigest(tx, campaignId, now, max, maxBytes));
    if (!parts) continue;
    await enqueueDeliveries(queues, parts.flatMap((p) => p.deliveryIds), 0, { priority: DIGEST_PRIORITY });
    runs.push(...parts);
  }
  return runs;
}
