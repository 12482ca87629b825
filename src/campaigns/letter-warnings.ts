// What the console warns about in a campaign's letter, on its page and before launching: a starter
// line left in, a line an empty supporter field reads broken in, a salutation left out.
import { TemplateError } from '../errors.ts';
import { isolateRightToLeft, withoutIsolates } from '../mail/bidi.ts';
import { links } from '../views.ts';
import { digestFieldLine, digestSubjectFields, renderLetter, STARTER_PLACEHOLDER, type LetterContext } from './letter-template.ts';
import type { Campaign, Target } from './types.ts';

/**
 * What the console warns about before a campaign goes live or while it is: a letter still holding
 * the starter's placeholder line reaches officials as written.
 */
export function unfinishedLetter(campaign: Pick<Campaign, 'letter_subject' | 'letter_body'>): string | null {
  if (!campaign.letter_body.includes(STARTER_PLACEHOLDER) && !campaign.letter_subject.includes(STARTER_PLACEHOLDER)) return null;
  return `The letter still says “${STARTER_PLACEHOLDER}”: officials would get that line as it is. Write what has happened and what you ask the official to do in its place.`;
}

/**
 * A link in the letter that carries what a supporter typed (`…?n={{supporter.fullName}}`): a mail
 * gateway that opens links to check them, or one click, hands it to whoever runs that site, with
 * no word of it on the sign page. Links as the letter's HTML part makes them (views.ts links); a
 * field no official is told (a digest's, the place for officials told the name only) is empty in
 * every letter, and no matter. Said on the campaign's page and before launching.
 */
export function supporterInLink(campaign: Pick<Campaign, 'letter_subject' | 'letter_body' | 'delivery_mode'>, targets: Pick<Target, 'disclose' | 'retired_at'>[], context: WarningContext): string | null {
  if (campaign.delivery_mode === 'digest') return null;
  const placeShown = targets.some((t) => !t.retired_at && t.disclose !== 'name');
  const marks = { fullName: '\uE010', city: placeShown ? '\uE011' : '', country: placeShown ? '\uE012' : '', personalNote: '\uE013' };
  let letter: { subject: string; text: string };
  try {
    letter = renderLetter(campaign.letter_subject, campaign.letter_body, { ...context, supporter: marks });
  } catch (err) {
    if (err instanceof TemplateError) return null;
    throw err;
  }
  const carrying = links(withoutIsolates(`${letter.subject}\n${letter.text}`)).find((l) => /[\uE010-\uE013]/u.test(l.url));
  if (!carrying) return null;
  const shown = carrying.url.replace(/[\uE010-\uE013]/gu, (mark) => `{{supporter.${FIELD_OF_MARK[mark]}}}`);
  return `A link in the letter carries what supporters type (${shown}): a mail system that opens links to check them, or one click, hands it to whoever runs that site. Keep supporter fields out of links.`;
}

const FIELD_OF_MARK: Record<string, string> = { '\uE010': 'fullName', '\uE011': 'city', '\uE012': 'country', '\uE013': 'personalNote' };

/** What reads broken in a line of a letter: a separator with nothing before it, one left at its end, two spaces between words. */
const oddities = (line: string) => (line.match(/^\s*[,;:.]|\s[,;:.]|[,;:]\s*$|\S\s{2,}\S/gu) ?? []).length;

/** The optional supporter fields, in the words brokenFieldLine uses for them. */
const OPTIONAL_FIELDS = [
  { key: 'city', words: 'city', hiddenFromName: true },
  { key: 'country', words: 'country', hiddenFromName: true },
  { key: 'personalNote', words: 'personal note', hiddenFromName: false },
] as const;

/**
 * All of a letter but the supporter, as the campaign's first official gets it (the route's
 * letterContextFor): a line the warnings quote reads as the officials will read it.
 */
export type WarningContext = Omit<LetterContext, 'supporter'>;

/**
 * A line that says more than an optional supporter field, with the field written into it outside
 * an {{#if}}, is sent broken wherever the field is empty: “I am writing from ,  about …” for a
 * supporter who left out their city and country, and in every letter to an official told the name
 * only (said so when that letter's line reads broken too). renderLetter drops a line left with
 * nothing but separators, not one that says more. Said on
 * the campaign's page and before launching, quoting the line as such a letter has it. A digest's
 * letter names no supporter: see digestSupporterLine.
 */
export function brokenFieldLine(campaign: Pick<Campaign, 'letter_subject' | 'letter_body' | 'delivery_mode'>, targets: Pick<Target, 'disclose' | 'retired_at'>[], context: WarningContext): string | null {
  if (campaign.delivery_mode === 'digest') return digestSupporterLine(campaign, context);
  // Private-use characters no template holds, standing for what a supporter typed.
  const MARKS = { city: '\uE004', country: '\uE005', personalNote: '\uE006' };
  // Quoted with what a supporter might have typed in the other fields.
  const SAMPLES: Record<string, string> = { '\uE004': 'Almaty', '\uE005': 'Kazakhstan', '\uE006': 'Please let him stay.' };
  const unmarked = (line: string) => line.replace(/[\uE004-\uE006]/g, (mark) => SAMPLES[mark]!);
  const render = (supporter: { city: string; country: string; personalNote: string }) => {
    const letter = renderLetter(campaign.letter_subject, campaign.letter_body, { ...context, supporter: { fullName: 'Signer', ...supporter } });
    // Compared by their words: a value is isolated in a letter holding right-to-left text, an empty one not.
    return [letter.subject, ...withoutIsolates(letter.text).split('\n')];
  };
  try {
    const full = render(MARKS);
    // A letter to an official told the name only (no city, no country) reads broken too when a
    // line of it that the full letter does not have reads oddly.
    const fullLines = new Set(full);
    const nameOnlyBroken = render({ ...MARKS, city: '', country: '' }).some((l) => !fullLines.has(l) && oddities(unmarked(l)) > 0);
    for (const field of OPTIONAL_FIELDS) {
      const kept = new Set(render({ ...MARKS, [field.key]: '' }));
      // Kept as it is but for the field, and reading broken for it: a separator with nothing before
      // it, one left at the end, or two spaces where a word was, that the line with the field has not.
      const line = full.find((l) => {
        const left = l.replaceAll(MARKS[field.key], '');
        return l.includes(MARKS[field.key]) && kept.has(left) && oddities(unmarked(left)) > oddities(unmarked(l));
      });
      if (line === undefined) continue;
      const toName = field.hiddenFromName && nameOnlyBroken && targets.some((t) => t.retired_at === null && t.disclose === 'name');
      return `For a supporter who leaves out their ${field.words}${toName ? ' (and in every letter to an official told the name only)' : ''}, this line of the letter reads “${isolateRightToLeft(unmarked(line.replaceAll(MARKS[field.key], '')).trim())}” Put {{supporter.${field.key}}} on a line of its own, or inside {{#if supporter.${field.key}}}…{{/if}}.`;
    }
  } catch (err) {
    // A letter that does not render says so where it is edited.
    if (err instanceof TemplateError) return null;
    throw err;
  }
  return null;
}

/**
 * A digest's letter is the template with every supporter variable empty (renderDigestLetter), the
 * signers listed below it: a line that writes a supporter's field into more words reaches every
 * official with a gap in it (“Supporter:  of .”). Said as brokenFieldLine says its lines.
 */
function digestSupporterLine(campaign: Pick<Campaign, 'letter_subject' | 'letter_body'>, context: WarningContext): string | null {
  try {
    const line = digestFieldLine(campaign.letter_body, context);
    const subject = digestSubjectFields(campaign.letter_subject, context);
    if (line === null && subject === null) return null;
    const said = [
      line !== null ? `this line reaches every official as “${isolateRightToLeft(line)}”` : '',
      subject !== null ? `${line !== null ? 'and the subject, which names no signer, reaches them' : 'the subject, which names no signer, reaches every official'} as “${isolateRightToLeft(subject)}”` : '',
    ].filter(Boolean).join(' ');
    return `A digest lists its signers below the letter, so every {{supporter.…}} in the letter is empty: ${said} Take the supporter's fields out of the letter.`;
  } catch (err) {
    if (err instanceof TemplateError) return null;
    throw err;
  }
}

/**
 * A salutation is optional on every form and in a CSV. When officials still written to have none
 * and the letter writes `{{target.salutation}}` with nothing in its place, their letters open
 * with "Dear ," or a bare comma: said on the campaign's page and before launching, quoting the
 * line. A salutation inside `{{#if target.salutation}}` (as in the console's starter letter), or
 * on a line that reads well without it, is not warned about.
 */
export function missingSalutation(campaign: Pick<Campaign, 'letter_subject' | 'letter_body'>, targets: Pick<Target, 'name' | 'title' | 'salutation' | 'retired_at'>[], context: WarningContext): string | null {
  const without = targets.filter((t) => t.retired_at === null && t.salutation.trim() === '');
  if (without.length === 0) return null;
  // A private-use character no template holds, standing for a salutation there is.
  const SAMPLE = '\uE003';
  const lines = (salutation: string) => withoutIsolates(renderLetter(campaign.letter_subject, campaign.letter_body, {
    ...context,
    supporter: { fullName: 'Signer', city: 'City', country: 'Country', personalNote: 'Note' },
    target: { name: without[0]!.name, title: without[0]!.title, salutation },
  }).text).split('\n');
  let bare: string | undefined;
  try {
    const withIt = lines(SAMPLE);
    const withNone = lines('');
    // Written unguarded, the line reads the same with the salutation taken out; in an {{#if}},
    // the lines differ, or there are fewer of them.
    if (withIt.length === withNone.length) {
      bare = withIt.find((line, i) => line.includes(SAMPLE) && line.replaceAll(SAMPLE, '') === withNone[i]
        && /^\s*[,;:.!]|\s[,;:.!]/u.test(withNone[i]!))?.replaceAll(SAMPLE, '').trim();
    }
  } catch (err) {
    if (err instanceof TemplateError) return null;
    throw err;
  }
  if (bare === undefined) return null;
  const names = without.slice(0, 3).map((t) => isolateRightToLeft(t.name)).join(', ') + (without.length > 3 ? ` and ${without.length - 3} more` : '');
  const one = without.length === 1;
  return `${names} ${one ? 'has' : 'have'} no salutation, so ${one ? 'their letter opens' : 'their letters open'} with “${isolateRightToLeft(bare)}”. Give ${one ? 'it one' : 'them one'} on the targets page, or write {{#if target.salutation}}{{target.salutation}}{{else}}Dear {{target.name}}{{/if}} in the letter.`;
}

/**
 * What the console warns about a letter as officials would read it (missingSalutation,
 * brokenFieldLine, supporterInLink), each null when nothing is wrong: on the campaign's page and
 * before launching.
 */
export function letterWarnings(campaign: Pick<Campaign, 'letter_subject' | 'letter_body' | 'delivery_mode'>, targets: Pick<Target, 'name' | 'title' | 'salutation' | 'disclose' | 'retired_at'>[], context: WarningContext) {
  return {
    noSalutation: missingSalutation(campaign, targets, context),
    brokenLine: brokenFieldLine(campaign, targets, context),
    linked: supporterInLink(campaign, targets, context),
  };
}
