import type { Response } from 'express';
import type { AppContext } from '../../../context.ts';
import type { FieldErrors } from '../../../errors.ts';
import { OFFICIAL_KINDS } from '../../../deliveries/service.ts';
import { learnsAddress } from '../../../campaigns/preview.ts';
import type { Disclose } from '../../../campaigns/letter-template.ts';
import { errorSummary, fieldLabel } from '../../forms.ts';
import { setFlash } from '../../middleware/session.ts';

export type Render = (res: Response, name: string, data: { title: string; section?: string; [key: string]: unknown }, status?: number) => void;

/**
 * Renders templates/pages/admin/<name> in the admin layout. Only what the layout needs is taken
 * from the session: never the organizer row itself, which holds the password hash.
 */
export function createRender(ctx: AppContext): Render {
  return (res, name, data, status = 200) => {
    const o = res.locals.organizer;
    const me = o && { id: o.id, email: o.email, name: o.name, role: o.role, isAdmin: o.role === 'admin' };
    const base = {
      orgName: ctx.config.orgName,
      csrfToken: res.locals.csrfToken,
      flash: res.locals.flash,
      me,
      outbox: ctx.mailer.kind === 'outbox',
    };
    res.status(status).type('html').send(ctx.views.page(`admin/${name}`, { ...base, ...data }, 'admin'));
  };
}

/** Field errors for a form: by field name, and as a list for the summary at the top (each links to its field). */
export function formErrors(fields: FieldErrors, rename: Record<string, string> = {}, order: readonly string[] = []) {
  const errors: Record<string, string> = {};
  for (const [key, message] of Object.entries(fields)) errors[rename[key] ?? key] ??= message;
  // The summary reads in the form's order, whichever check found each mistake first; fields it
  // does not name (a conflict, a target's row) keep theirs, after.
  const rank = (field: string) => (order.includes(field) ? order.indexOf(field) : order.length);
  const sorted = Object.fromEntries(Object.entries(errors).sort(([a], [b]) => rank(a) - rank(b)));
  return {
    errors: sorted,
    errorList: errorSummary(sorted, FIELD_LABELS),
  };
}

/** How soon after something was created the same form sent again counts as sent twice, not as a clash. */
export const SENT_TWICE_MS = 2 * 60_000;

/** Fields of the console's campaign and case forms, in the order the pages show them. */
export const CAMPAIGN_FORM_ORDER = ['revision', 'title', 'slug', 'case_slug', 'summary', 'letter_subject', 'letter_body', 'delivery_mode', 'digest_hour', 'goal', 'deadline', 'require_confirmation', 'targets_csv'];
export const CASE_FORM_ORDER = ['revision', 'person_name', 'slug', 'status', 'location', 'language', 'summary'];

/** What the console's forms label a field (see FIELD_LABELS). */
export const consoleLabel = (field: string) => fieldLabel(field, FIELD_LABELS);

/** What the error summary calls a field whose form label is not its name made readable. */
const FIELD_LABELS: Record<string, string> = {
  case_slug: 'Case',
  slug: 'Address (slug)',
  delivery_mode: 'Delivery mode',
  require_confirmation: 'Confirmation',
  digest_hour: 'Digest hour',
  person_name: "Person's name",
  letter_subject: 'Subject',
  letter_body: 'Body',
  targets_csv: 'Targets as CSV',
  csv: 'CSV',
  body: 'What happened',
  label: 'What it is for',
  confirm_password: 'New password again',
  revision: 'Edit conflict',
  disclose: 'What this target learns',
};

/**
 * The message for a form saved on an old revision: the conflict, and which of `fields` someone
 * saved differently meanwhile (by label). Saving again puts every field of the form in place, so
 * an organizer who changed the goal alone must see that it would also put back an older letter.
 */
export function conflictMessage(message: string, saved: Record<string, string>, typed: unknown, fields: readonly string[]): string {
  const differ = differingFields(saved, typed, fields);
  if (differ.length === 0) return message;
  const labels = errorSummary(Object.fromEntries(differ.map((f) => [f, ''])), FIELD_LABELS).map((e) => e.label);
  return `${message} What is saved differs from this form in: ${labels.join(', ')} (your own changes among them).`;
}

/**
 * The fields of a form whose values are not what is saved. None, after an edit conflict, means the
 * form was saved already: the same form sent twice (a double click), whose second answer should
 * say saved, not "someone saved this meanwhile".
 */
export function differingFields(saved: Record<string, string>, typed: unknown, fields: readonly string[]): string[] {
  const body = (typed ?? {}) as Record<string, unknown>;
  // Composed, as text is kept (oneLineText): a form sent twice with its accents as separate marks is the same form.
  const same = (v: unknown) => str(v).replace(/\r\n?/g, '\n').normalize('NFC').trim();
  return fields.filter((f) => f in saved && same(body[f]) !== same(saved[f]));
}

/**
 * After an edit conflict, or a slug taken by what may be this very form: when the form holds what
 * is saved (differingFields finds nothing), it was sent twice, and this answer says saved, as the
 * first did, and goes to `to`.
 * @returns whether it answered.
 */
export function answerSavedAlready(ctx: AppContext, res: Response, form: { saved: Record<string, string>; typed: unknown; fields: readonly string[]; flash: string; to: string }): boolean {
  if (differingFields(form.saved, form.typed, form.fields).length > 0) return false;
  setFlash(ctx, res, form.flash);
  res.redirect(303, form.to);
  return true;
}

const SEES: Record<Disclose, string> = { name: 'name and note only', name_place: 'name, city, country and note', full: 'name, place, note and email' };

/**
 * What a target learns of each supporter (its `disclose`), in the console's words. The personal
 * note goes to every target, as the campaign page tells supporters (discloseWords). A `full`
 * target of a campaign that sends without confirmation gets no address (learnsAddress).
 */
export function seesWords(disclose: Disclose, requireConfirmation: boolean): string {
  if (disclose === 'full' && !learnsAddress(disclose, requireConfirmation)) return 'name, place and note (no email: this campaign sends without confirming it)';
  return SEES[disclose];
}

/** The revision a form was opened on (its hidden field); null when it sent none, and then nothing is checked. */
export function revisionOf(body: unknown): number | null {
  const v = str((body as Record<string, unknown> | undefined)?.revision);
  return /^\d{1,9}$/.test(v) ? Number(v) : null;
}


/** A form value as one string (a repeated field or a missing one is read as empty). */
export const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Only console paths: `next` must never send a signed-in organizer to another site. */
export function safeNext(value: unknown): string {
  const v = str(value);
  return /^\/admin(?:[/?#]|$)/.test(v) && !v.includes('\\') ? v : '/admin';
}

/**
 * Console pages that give out supporters' data, each recorded in the audit log or saved as a
 * file (index.ts guards them: askedHere), with the page each is asked for from.
 */
export const GIVES_OUT = [
  { path: '/campaigns/:slug/signatures', askedFrom: '/campaigns/:slug' },
  { path: '/campaigns/:slug/signatures.csv', askedFrom: '/campaigns/:slug' },
  { path: '/subscribers.csv', askedFrom: '/subscribers' },
  { path: '/outbox/:file', askedFrom: '/outbox' },
];

/** Each of GIVES_OUT as Express matches it under /admin: any case, a slash at the end. */
const GIVING_OUT = GIVES_OUT.map(({ path, askedFrom }) => ({
  pattern: new RegExp(`^/admin${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, '(?<$1>[^/]+)')}/?$`, 'i'),
  askedFrom,
}));

/**
 * Where signing in (or choosing one's password) leads: `next` as safeNext keeps it, but never
 * straight to a page that gives out supporters' data. The form that signs in is this site's own,
 * so the page it leads to counts as asked for here: another site's link to the sign-in page with
 * `next` naming an export would otherwise download the list once the organizer signed in. It
 * leads to the page the export is asked for from instead.
 */
export function signedInLanding(value: unknown): string {
  const next = safeNext(value);
  const path = new URL(next, 'http://console.invalid').pathname;
  for (const { pattern, askedFrom } of GIVING_OUT) {
    const giving = pattern.exec(path);
    if (giving) return `/admin${askedFrom.replace(/:(\w+)/g, (_, name: string) => giving.groups![name]!)}`;
  }
  return next;
}

/**
 * Failed deliveries as this organizer may see them. An address of a supporter or a subscriber is
 * for admins, as the subscriber list is: an organizer sees a signer's on the campaign's signature
 * list, where each view is recorded, and the failed lists must not be a way round that. Each row
 * is marked `listed` when its address, if suppressed, is one the suppression list shows this
 * organizer (see officialsOnly in operations.ts): the badge links there only then.
 */
export const failedAsShown = <R extends { kind: string; recipient: string }>(rows: R[], admin: boolean) =>
  rows.map((r) => {
    if (admin || OFFICIAL_KINDS.includes(r.kind)) return { ...r, listed: true };
    const recipient = r.kind === 'confirm' ? 'a signer (the signature list shows the address)' : 'a subscriber (admins see the address)';
    return { ...r, recipient, listed: false };
  });
