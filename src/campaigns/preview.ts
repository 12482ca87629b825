import Handlebars from 'handlebars';
import { discloseTo, renderLetter, type Disclose, type LetterContext } from './letter-template.ts';

/** Supporter fields the sign form fills in, with the form field names and placeholders. */
export const PREVIEW_FIELDS = [
  { key: 'fullName', field: 'full_name', placeholder: '[your name]' },
  { key: 'city', field: 'city', placeholder: '[your city]' },
  { key: 'country', field: 'country', placeholder: '[your country]' },
  { key: 'personalNote', field: 'personal_note', placeholder: '[your note]' },
] as const;

const escapeHtml = Handlebars.Utils.escapeExpression;

// Private-use characters mark where each supporter field lands; they cannot come from a template
// author's intent and are replaced after escaping, so the markup added is ours alone.
const mark = (key: string) => `\uE000${key}\uE001`;

type SupporterField = (typeof PREVIEW_FIELDS)[number]['key'];

/**
 * The letter as HTML with each supporter field in a `<span data-field>`, so the page's script can
 * fill in what is typed. Without the script the typed values (or placeholders) show as they are.
 * A field in `hidden` renders empty, as in the letter its reader gets (a target's `disclose`, or
 * a digest, which lists its signers below the letter instead).
 */
export function previewLetterHtml(
  subject: string,
  body: string,
  base: Omit<LetterContext, 'supporter'>,
  values: Partial<Record<SupporterField, string>> = {},
  hidden: ReadonlySet<SupporterField> = new Set(),
): { subject: string; body: string } {
  const supporter = Object.fromEntries(PREVIEW_FIELDS.map((f) => [f.key, hidden.has(f.key) ? '' : mark(f.key)])) as LetterContext['supporter'];
  // Marker characters typed into a template or a case are dropped, so every marker left is ours.
  const unmark = (s: string) => s.replace(/[\uE000\uE001]/g, '');
  const rendered = renderLetter(unmark(subject), unmark(body), {
    target: { name: unmark(base.target.name), title: unmark(base.target.title), salutation: unmark(base.target.salutation) },
    case: { personName: unmark(base.case.personName), location: unmark(base.case.location) },
    campaign: { title: unmark(base.campaign.title) },
    date: base.date,
    supporter,
  });
  const fill = (text: string) =>
    escapeHtml(text).replace(/\uE000(\w+)\uE001/g, (_, key: string) => {
      const f = PREVIEW_FIELDS.find((p) => p.key === key)!;
      const value = values[f.key]?.trim();
      return `<span class="fill${value ? '' : ' empty'}" data-field="${f.field}" data-placeholder="${escapeHtml(f.placeholder)}">${escapeHtml(value || f.placeholder)}</span>`;
    });
  return { subject: fill(rendered.subject), body: fill(rendered.text) };
}

/** What the preview must leave empty: what `disclose` hides, or every supporter field of a digest. */
export function hiddenInPreview(deliveryMode: string, disclose: Disclose): Set<SupporterField> {
  if (deliveryMode === 'digest') return new Set(PREVIEW_FIELDS.map((f) => f.key));
  const shown = discloseTo(disclose, { fullName: 'x', city: 'x', country: 'x', personalNote: 'x' });
  return new Set(PREVIEW_FIELDS.map((f) => f.key).filter((k) => !shown[k]));
}

const DISCLOSE_WORDS: Record<Disclose, string> = {
  name: 'your name and note',
  name_place: 'your name, city, country and note',
  full: 'your name, city, country, note and email address (to reply to you)',
};

/**
 * What a target learns of a supporter, in words for the sign page. An address is passed on only
 * once its owner confirmed it, so without confirmation `full` shows what `name_place` does.
 */
export function discloseWords(disclose: Disclose, requireConfirmation: boolean): string {
  return DISCLOSE_WORDS[disclose === 'full' && !requireConfirmation ? 'name_place' : disclose];
}
