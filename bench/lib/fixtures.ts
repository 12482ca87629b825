import crypto from 'node:crypto';
import { changeCampaignStatus, createCampaign } from '../../src/campaigns/service.ts';
import { createCase } from '../../src/cases/service.ts';
import type { Db } from '../../src/db/index.ts';
import { enqueueDeliveries, sendPriority, type Queues } from '../../src/queues.ts';

export const LETTER_SUBJECT = 'About {{case.personName}}';
export const LETTER_BODY = `{{target.salutation}},

I am writing about {{case.personName}}, an ethnic Kazakh who fled the camps in Xinjiang and is now
detained in {{case.location}} for crossing the border. Sending her back to China would expose her
to torture. I ask you to release her and to grant her protection.
{{#if supporter.personalNote}}

{{supporter.personalNote}}
{{/if}}

Yours sincerely,
{{supporter.fullName}}
{{supporter.city}} {{supporter.country}}
{{date}}`;

export interface BenchCampaign {
  id: number;
  slug: string;
  caseId: number;
  caseSlug: string;
}

/** A case and a live campaign with one target (only example addresses). */
export async function createBenchCampaign(db: Db, opts: { requireConfirmation?: boolean } = {}): Promise<BenchCampaign> {
  const tag = crypto.randomBytes(4).toString('hex');
  const kase = await createCase(db, {
    slug: `bench-case-${tag}`,
    personName: 'Aigerim Bench',
    summary: 'Fled the camps; on trial for crossing the border.',
    status: 'on_trial',
    location: 'Almaty',
  });
  const campaign = await createCampaign(db, {
    slug: `bench-${tag}`,
    caseSlug: kase.slug,
    title: 'Free Aigerim',
    summary: 'Write to the court.',
    letter: { subject: LETTER_SUBJECT, body: LETTER_BODY },
    targets: [{ name: 'District Court', title: 'Judge', email: 'court@bench.example', salutation: 'Your Honour', disclose: 'name_place' }],
    deliveryMode: 'each',
    requireConfirmation: opts.requireConfirmation ?? true,
  });
  await changeCampaignStatus(db, campaign.slug, 'launch');
  return { id: campaign.id, slug: campaign.slug, caseId: kase.id, caseSlug: kase.slug };
}

/** `n` confirmed signatures on the campaign, inserted in one statement. */
export async function insertSignatures(db: Db, campaignId: number, n: number): Promise<void> {
  await db.query(
    `INSERT INTO signatures (campaign_id, full_name, email, city, country, personal_note, status, confirmed_at)
     SELECT $1, 'Supporter ' || i, 'supporter' || i || '@bench.example', 'Lyon', 'France',
            'Please let her stay.', 'confirmed', now()
       FROM generate_series(1, $2::int) AS i`,
    [campaignId, n],
  );
}

/**
 * Fresh `letter` deliveries, one per signature of the campaign (one target), all queued and each
 * with its send job, as confirming the signatures would have left them. Old deliveries go first.
 * @returns the delivery ids.
 */
export async function queueLetters(db: Db, queues: Pick<Queues, 'send'>, campaignId: number): Promise<number[]> {
  await db.query('TRUNCATE deliveries');
  const { rows } = await db.query<{ id: number }>(
    `INSERT INTO deliveries (kind, source_id, target_id, campaign_id, recipient)
     SELECT 'letter', s.id, t.id, s.campaign_id, t.email
       FROM signatures s JOIN targets t ON t.campaign_id = s.campaign_id
      WHERE s.campaign_id = $1
      ORDER BY s.id
     RETURNING id`,
    [campaignId],
  );
  const ids = rows.map((r) => r.id);
  await enqueueDeliveries(queues, ids, 0, { priority: sendPriority('letter') });
  return ids;
}
