import type { Db, Queryable } from '../db/index.ts';
import { enqueueDeliveries, type Queues } from '../queues.ts';
import * as q from './queries.ts';

/**
 * Signers one digest letter carries at most; more waiting go in further letters of the same run.
 * A signer can take ~30 kB of a message (a 2,000-character note in Cyrillic, quoted-printable in
 * the text and the HTML part, and again in the CSV): 250 keep a letter under ~8 MB, below the
 * 10 MB that relays commonly refuse past, where one unbounded letter was refused (552) and every
 * signer in it lost.
 */
export const DIGEST_MAX_SIGNERS = 250;

/**
 * When the next digest goes, as the console says it: at the campaign's hour today; once that hour
 * has passed with none made today, at the next quarter hour (digests are made on the quarter hours
 * of the clock); after one today, tomorrow at the hour.
 */
export function nextDigestWords(digestHour: number, lastDigestAt: Date | null, now = new Date()): string {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const at = `${digestHour}:00 UTC`;
  if (lastDigestAt && lastDigestAt.getTime() >= today) return `tomorrow at ${at}`;
  if (now.getTime() < today + digestHour * 3_600_000) return `at ${at}`;
  const quarter = 15 * 60_000;
  const next = new Date(Math.ceil((now.getTime() + 1) / quarter) * quarter);
  return `at ${next.getUTCHours()}:${String(next.getUTCMinutes()).padStart(2, '0')} UTC (today's hour, ${at}, has passed)`;
}

export interface DigestRun {
  digestId: number;
  campaignId: number;
  signatures: number;
  deliveryIds: number[];
}

/**
 * Creates a campaign's digest inside `tx`: claims the first `max` confirmed signers not yet in a
 * digest and inserts one letter per target. Claim and letters commit together, so a crash leaves
 * either both or neither, and a signer is in exactly one digest.
 * @returns null when the campaign is not due or has no new signer (nothing is sent).
 */
export async function createDigest(tx: Queryable, campaignId: number, now: Date, max = DIGEST_MAX_SIGNERS): Promise<DigestRun | null> {
  if (!(await q.lockDueCampaign(tx, campaignId, now, max))) return null;
  const digestId = await q.insertDigest(tx, campaignId, now);
  const signatures = await q.claimSignatures(tx, campaignId, digestId, max);
  // lockDueCampaign saw a waiting signer and holds the campaign's lock, so this is a safeguard.
  if (signatures === 0) throw new Error(`digest for campaign ${campaignId}: no signer to claim`);
  return { digestId, campaignId, signatures, deliveryIds: await q.insertDigestDeliveries(tx, campaignId, digestId) };
}

/**
 * The maintenance task: the digests of every due campaign, each in its own transaction, then its
 * letters enqueued; a campaign with more than `max` waiting signers gets several. Running it
 * twice, or at once in two processes, sends nothing twice; a crash after a commit leaves queued
 * letters that the sweeper enqueues.
 */
export async function runDueDigests(db: Db, queues: Pick<Queues, 'send'>, now = new Date(), max = DIGEST_MAX_SIGNERS): Promise<DigestRun[]> {
  const runs: DigestRun[] = [];
  for (const campaignId of await q.listDueCampaigns(db, now, max)) {
    for (;;) {
      const run = await db.transaction((tx) => createDigest(tx, campaignId, now, max));
      if (!run) break;
      await enqueueDeliveries(queues, run.deliveryIds);
      runs.push(run);
    }
  }
  return runs;
}
