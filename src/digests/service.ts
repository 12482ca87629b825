import type { Db, Queryable } from '../db/index.ts';
import { enqueueDeliveries, type Queues } from '../queues.ts';
import * as q from './queries.ts';

export interface DigestRun {
  digestId: number;
  campaignId: number;
  signatures: number;
  deliveryIds: number[];
}

/**
 * Creates a campaign's digest inside `tx`: claims every confirmed signer not yet in a digest
 * and inserts one letter per target. Claim and letters commit together, so a crash leaves
 * either both or neither, and a signer is in exactly one digest.
 * @returns null when the campaign is not due or has no new signer (nothing is sent).
 */
export async function createDigest(tx: Queryable, campaignId: number, now: Date): Promise<DigestRun | null> {
  if (!(await q.lockDueCampaign(tx, campaignId, now))) return null;
  const digestId = await q.insertDigest(tx, campaignId, now);
  const signatures = await q.claimSignatures(tx, campaignId, digestId);
  // lockDueCampaign saw a waiting signer and holds the campaign's lock, so this is a safeguard.
  if (signatures === 0) throw new Error(`digest for campaign ${campaignId}: no signer to claim`);
  return { digestId, campaignId, signatures, deliveryIds: await q.insertDigestDeliveries(tx, campaignId, digestId) };
}

/**
 * The maintenance task: one digest per due campaign, each in its own transaction, then its
 * letters enqueued. Running it twice, or at once in two processes, sends nothing twice; a crash
 * after a commit leaves queued letters that the sweeper enqueues.
 */
export async function runDueDigests(db: Db, queues: Pick<Queues, 'send'>, now = new Date()): Promise<DigestRun[]> {
  const runs: DigestRun[] = [];
  for (const campaignId of await q.listDueCampaigns(db, now)) {
    const run = await db.transaction((tx) => createDigest(tx, campaignId, now));
    if (!run) continue;
    await enqueueDeliveries(queues, run.deliveryIds);
    runs.push(run);
  }
  return runs;
}
