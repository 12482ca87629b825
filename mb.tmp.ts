import { renderLetter } from './src/campaigns/letter-template.ts';
const body = `{{target.salutation}},\n\nI am writing about {{case.personName}}, an ethnic Kazakh who fled the camps in Xinjiang and is now\ndetained in {{case.location}} for crossing the border. Sending her back to China would expose her\nto torture. I ask you to release her and to grant her protection.\n\n{{#if supporter.personalNote}}{{supporter.personalNote}}\n\n{{/if}}Yours sincerely,\n{{supporter.fullName}}\n{{#if supporter.city}}{{supporter.city}}, {{/if}}{{supporter.country}}\n{{date}}`;
const ctx = (i: number) => ({ supporter: { fullName: `Supporter ${i}`, city: 'Lyon', country: 'France', personalNote: '' }, target: { name: 'District Court', title: 'Judge', salutation: 'Your Honour' }, case: { personName: 'Aigerim Bench', location: 'Almaty' }, campaign: { title: 'Free Aigerim' }, date: '7 December 2026' });
for (let r = 0; r < 5; r++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 50000; i++) renderLetter('About {{case.personName}}', body, ctx(i));
  console.log(Number(process.hrtime.bigint() - t) / 50000 / 1000, 'µs per render');
}
