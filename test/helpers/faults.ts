import type { ParsedMail } from 'mailparser';
import { getCampaign } from '../../src/campaigns/service.ts';
import type { Db } from '../../src/db/index.ts';
import type { Delivery, DeliveryStatus } from '../../src/deliveries/types.ts';
import { sign } from '../../src/signatures/service.ts';
import type { TestContext } from './context.ts';
import { createLiveCampaign, uniq } from './fixtures.ts';

export interface LetterCampaign {
  slug: string;
  id: number;
  /** In every letter's subject, so a test counts only its own letters in a shared sink. */
  tag: string;
  targets: string[];
}

/**
 * A live campaign without confirmation whose letter subject names the signer, so each
 * (recipient, subject) pair is one delivery and a second copy of a letter shows as a duplicate.
 */
export async function createLetterCampaign(db: Db, targetCount: number): Promise<LetterCampaign> {
  const tag = uniq('letter');
  const targets = Array.from({ length: targetCount }, (_, i) => `official${i}@${tag}.example`);
  const { slug } = await createLiveCampaign(db, {
    requireConfirmation: false,
    letter: { subject: `${tag} from {{supporter.fullName}}`, body: 'Dear {{target.name}},\n\nRelease her.\n\n{{supporter.fullName}}' },
    targets: targets.map((email, i) => ({ name: `Official ${i}`, email })),
  });
  return { slug, id: (await getCampaign(db, slug)).id, tag, targets };
}

/** Signs through the service, as the sign form does: letters commit with the signature, then jobs follow (waited for here). */
export async function signAs(ctx: TestContext, campaign: LetterCampaign, fullName: string): Promise<void> {
  const email = `${fullName.toLowerCase().replace(/\W+/g, '.')}@supporter.example`;
  await sign(ctx.db, ctx, campaign.slug, { fullName, email });
  await ctx.queues.settled();
}

/**
 * `count` confirmed signatures and one letter delivery per target for each, written in bulk with
 * SQL (as the confirm flow would, minus a thousand HTTP round trips). Nothing is enqueued.
 * @returns the new delivery ids
 */
export async function insertLetters(db: Db, campaign: LetterCampaign, count: number): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO signatures (campaign_id, full_name, email, status, confirmed_at)
       SELECT $1, 'Signer ' || g, 'signer' || g || '@supporter.example', 'confirmed', now() FROM generate_series(1, $2::int) g`,
      [campaign.id, count],
    );
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
       SELECT 'letter', s.id, t.id, t.campaign_id, t.email
         FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id
        WHERE s.campaign_id = $1
       ON CONFLICT DO NOTHING RETURNING id`,
      [campaign.id],
    );
    return rows.map((r) => r.id);
  });
}

export async function deliveriesOf(db: Db, campaign: LetterCampaign): Promise<Delivery[]> {
  const { rows } = await db.query<Delivery>('SELECT * FROM deliveries WHERE campaign_id = $1 ORDER BY id', [campaign.id]);
  return rows;
}

export async function statusCounts(db: Db, campaign: LetterCampaign): Promise<Partial<Record<DeliveryStatus, number>>> {
  const { rows } = await db.query<{ status: DeliveryStatus; n: number }>(
    'SELECT status, count(*)::int AS n FROM deliveries WHERE campaign_id = $1 GROUP BY status',
    [campaign.id],
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** Polls until every delivery of the campaign is sent or failed. @returns the rows */
export async function waitUntilSettled(db: Db, campaign: LetterCampaign, timeoutMs = 30_000): Promise<Delivery[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await deliveriesOf(db, campaign);
    if (rows.length > 0 && rows.every((r) => r.status === 'sent' || r.status === 'failed')) return rows;
    if (Date.now() > deadline) {
      throw new Error(`deliveries not settled in ${timeoutMs} ms: ${JSON.stringify(await statusCounts(db, campaign))}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const toAddress = (m: ParsedMail) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address ?? '';

/** How many copies of each letter of this campaign the sink accepted, keyed `recipient|subject`. */
export function copiesOf(messages: readonly ParsedMail[], campaign: LetterCampaign): Map<string, number> {
  const copies = new Map<string, number>();
  for (const m of messages) {
    if (!m.subject?.startsWith(campaign.tag)) continue;
    const key = `${toAddress(m)}|${m.subject}`;
    copies.set(key, (copies.get(key) ?? 0) + 1);
  }
  return copies;
}

/** Copies beyond the first of every letter. */
export function duplicatesIn(copies: Map<string, number>): number {
  let extra = 0;
  for (const n of copies.values()) extra += n - 1;
  return extra;
}
