import type { FieldErrors } from '../../../errors.ts';
import { str } from './render.ts';

/** Form field for each service field; nested and per-target keys map to their form field. */
export function campaignFieldOf(key: string): string {
  if (key.startsWith('targets')) return 'targets_csv';
  const map: Record<string, string> = {
    caseSlug: 'case_slug', 'letter.subject': 'letter_subject', 'letter.body': 'letter_body', subject: 'letter_subject', body: 'letter_body',
    deliveryMode: 'delivery_mode', digestHour: 'digest_hour', requireConfirmation: 'require_confirmation',
  };
  return map[key] ?? key;
}

export function renameCampaignErrors(fields: FieldErrors): FieldErrors {
  const out: FieldErrors = {};
  for (const [k, v] of Object.entries(fields)) out[campaignFieldOf(k)] ??= v;
  return out;
}

/** The campaign form as service input. Numbers that are not whole numbers are reported, not guessed. */
export function campaignForm(body: Record<string, unknown> = {}) {
  const errors: FieldErrors = {};
  const whole = (field: string, v: string) => {
    if (v.trim() === '') return null;
    if (!/^-?\d+$/.test(v.trim())) {
      errors[field] = 'must be a whole number';
      return null;
    }
    return Number(v);
  };
  const deliveryMode = str(body.delivery_mode) || 'each';
  // The hour says when a digest goes; a campaign sending each letter at once has no use for it,
  // so a slip in that field does not stop its form (the hour is kept, or 9, until it is a digest).
  const hour = deliveryMode === 'digest' ? whole('digest_hour', str(body.digest_hour)) : /^\s*(\d|1\d|2[0-3])\s*$/.test(str(body.digest_hour)) ? Number(str(body.digest_hour)) : null;
  const input = {
    slug: str(body.slug),
    caseSlug: str(body.case_slug),
    title: str(body.title),
    summary: str(body.summary),
    letter: { subject: str(body.letter_subject), body: str(body.letter_body) },
    deliveryMode,
    digestHour: hour ?? 9,
    goal: whole('goal', str(body.goal)),
    requireConfirmation: body.require_confirmation === 'on' || body.require_confirmation === 'true',
  };
  return { input, errors };
}

/** The form's values for a saved campaign. */
export function campaignValues(c: {
  slug: string; title: string; summary: string; letter_subject: string; letter_body: string;
  delivery_mode: string; digest_hour: number; goal: number | null; require_confirmation: boolean; revision: number;
}, caseSlug: string) {
  return {
    revision: String(c.revision), slug: c.slug, case_slug: caseSlug, title: c.title, summary: c.summary, letter_subject: c.letter_subject, letter_body: c.letter_body,
    delivery_mode: c.delivery_mode, digest_hour: String(c.digest_hour), goal: c.goal === null ? '' : String(c.goal),
    require_confirmation: c.require_confirmation ? 'on' : '',
  };
}
