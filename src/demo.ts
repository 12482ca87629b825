import type { Db } from './db/index.ts';
import { changeCampaignStatus, createCampaign } from './campaigns/service.ts';
import { createCase } from './cases/service.ts';
import { SIGNER_PLACE } from './campaigns/letter-template.ts';

// Invented people and example.org addresses only: a demo must never mail a real official.
export const SIGN_OFF = `{{#if supporter.personalNote}}
{{supporter.personalNote}}

{{/if}}
Yours respectfully,

{{supporter.fullName}}
${SIGNER_PLACE}
{{date}}`;

const DEMO = [
  {
    case: {
      slug: 'aigerim-nurlanovna',
      personName: 'Aigerim Nurlanovna',
      status: 'on_trial',
      location: 'Zharkent, Kazakhstan',
      summary:
        'Aigerim Nurlanovna, an ethnic Kazakh from Xinjiang, crossed into Kazakhstan on foot after relatives ' +
        'were taken to a "re-education" camp and she was told she would be next. She asked for asylum at once. ' +
        'She is now on trial for crossing the border illegally; a conviction would clear the way to return her to China.',
    },
    campaign: {
      slug: 'protect-aigerim',
      title: 'Do not send Aigerim back to the camps',
      summary: 'Ask the court to weigh the danger she fled, and the foreign ministry to grant her protection.',
      letter: {
        subject: 'Protection for {{case.personName}}',
        body: `{{#if target.salutation}}{{target.salutation}}{{else}}Dear {{target.name}}{{/if}},

I am writing about {{case.personName}}, who is on trial in {{case.location}} for crossing the border from China. She fled because members of her family were detained in camps in Xinjiang and she was told she would be next. Returning her to China would expose her to arbitrary detention and worse.

I respectfully ask you to consider the reasons she fled, to apply Kazakhstan's obligations under the 1951 Refugee Convention and the Convention against Torture, and to ensure she is not returned to China.

${SIGN_OFF}`,
      },
      targets: [
        { name: 'Judge of the Zharkent District Court', title: 'Presiding judge', email: 'court@example.org', salutation: 'Your Honour', disclose: 'name_place' },
        { name: 'Ministry of Foreign Affairs', title: 'Department of Consular Service', email: 'mfa@example.org', salutation: 'Dear Sir or Madam', disclose: 'name' },
      ],
      deliveryMode: 'each',
      goal: 1000,
    },
  },
  {
    case: {
      slug: 'yerlan-and-dias',
      personName: 'Yerlan Bekov and Dias Omarov',
      status: 'at_risk',
      location: 'Almaty, Kazakhstan',
      summary:
        'Two young ethnic Kazakh men crossed from Xinjiang to escape the camps. They were detained for crossing the ' +
        'border and their asylum claims were refused in a hearing without an interpreter. They may be deported any day.',
    },
    campaign: {
      slug: 'stop-deportation-yerlan-dias',
      title: 'Stop the deportation of Yerlan and Dias',
      summary: 'Ask the migration service to suspend the deportation and parliament members to raise the case.',
      letter: {
        subject: 'Suspend the deportation of {{case.personName}}',
        body: `{{#if target.salutation}}{{target.salutation}}{{else}}Dear {{target.name}}{{/if}},

I am deeply concerned for {{case.personName}}, detained in {{case.location}} after fleeing Xinjiang. Their asylum claims were refused without an interpreter. Deporting them to China would put them at grave risk.

Please suspend their deportation and ensure a fair hearing of their claims.

${SIGN_OFF}`,
      },
      targets: [
        { name: 'Migration Service', title: 'Head of the Migration Service', email: 'migration@example.org', salutation: 'Dear Head of Service', disclose: 'name_place' },
        { name: 'A. Member', title: 'Member of Parliament', email: 'mp.one@example.org', salutation: 'Dear Member of Parliament', disclose: 'full' },
        { name: 'B. Member', title: 'Member of Parliament', email: 'mp.two@example.org', salutation: 'Dear Member of Parliament', disclose: 'name_place' },
      ],
      deliveryMode: 'each',
      goal: 500,
    },
  },
];

/** Adds the demo cases and live campaigns; a slug that exists is left as it is. @returns slugs added */
export async function seedDemo(db: Db): Promise<string[]> {
  const added: string[] = [];
  for (const demo of DEMO) {
    const exists = await db.query('SELECT 1 FROM campaigns WHERE slug = $1', [demo.campaign.slug]);
    if (exists.rowCount) continue;
    const kase = await db.query<{ slug: string }>('SELECT slug FROM cases WHERE slug = $1', [demo.case.slug]);
    if (!kase.rowCount) await createCase(db, demo.case);
    await createCampaign(db, { ...demo.campaign, caseSlug: demo.case.slug });
    await changeCampaignStatus(db, demo.campaign.slug, 'launch');
    added.push(demo.campaign.slug);
  }
  return added;
}

export async function isEmpty(db: Db): Promise<boolean> {
  return (await db.query('SELECT 1 FROM campaigns LIMIT 1')).rowCount === 0;
}
