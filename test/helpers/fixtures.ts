import crypto from 'node:crypto';
import type { Db } from '../../src/db/index.ts';
import { changeCampaignStatus, createCampaign } from '../../src/campaigns/service.ts';
import { createCase } from '../../src/cases/service.ts';
import { addOrganizer, createApiToken } from '../../src/organizers/service.ts';

export const uniq = (p = 'x') => `${p}-${crypto.randomBytes(4).toString('hex')}`;

export const LETTER_BODY = `{{target.salutation}},

I write about {{case.personName}} in {{case.location}}.
{{#if supporter.personalNote}}
{{supporter.personalNote}}
{{/if}}
{{supporter.fullName}}
{{supporter.city}} {{supporter.country}}
{{date}}`;

export interface CampaignFixture {
  caseSlug: string;
  slug: string;
}

/** A case and a live campaign (unless status says otherwise) with the given targets. */
export async function createLiveCampaign(
  db: Db,
  overrides: Record<string, unknown> = {},
  status: 'draft' | 'live' | 'paused' | 'closed' = 'live',
): Promise<CampaignFixture> {
  const caseSlug = uniq('case');
  await createCase(db, { slug: caseSlug, personName: 'Aigerim Test', summary: 'Fled the camps.', status: 'detained', location: 'Almaty' });
  const slug = uniq('camp');
  await createCampaign(db, {
    slug,
    caseSlug,
    title: 'Free Aigerim',
    summary: 'Write to the court.',
    letter: { subject: 'About {{case.personName}}', body: LETTER_BODY },
    targets: [
      { name: 'Judge One', title: 'District judge', email: 'judge@court.example', salutation: 'Your Honour', disclose: 'name_place' },
      { name: 'Ministry', title: 'Foreign ministry', email: 'mfa@ministry.example', salutation: 'Dear Minister', disclose: 'name' },
    ],
    deliveryMode: 'each',
    goal: 100,
    ...overrides,
  });
  if (status !== 'draft') await changeCampaignStatus(db, slug, 'launch');
  if (status === 'paused') await changeCampaignStatus(db, slug, 'pause');
  if (status === 'closed') await changeCampaignStatus(db, slug, 'close');
  return { caseSlug, slug };
}

/** An organizer and an API token for them. */
export async function createToken(db: Db, role: 'admin' | 'organizer' = 'admin'): Promise<string> {
  const email = `${uniq('org')}@appeal.test`;
  await addOrganizer(db, { email, role, password: 'correct horse battery' });
  return (await createApiToken(db, email, 'test')).token;
}
