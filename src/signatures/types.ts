import { z } from 'zod';
import { email } from '../campaigns/types.ts';
import { line, NOT_TEXT, nullAsAbsent, prose } from '../cases/types.ts';
import type { ConsentSource } from '../subscribers/types.ts';

/** Where a signature was made: the campaign page's form, or a page embedding it through the API. */
export type SignedVia = Extract<ConsentSource, 'sign form' | 'api'>;

export interface Signature {
  id: number;
  campaign_id: number;
  full_name: string;
  email: string;
  city: string;
  country: string;
  personal_note: string;
  status: 'pending' | 'confirmed';
  /** Times signing again replaced it while pending; the confirmation page sends the one it showed. */
  edits: number;
  subscribe: boolean;
  via: SignedVia;
  created_at: Date;
  confirmed_at: Date | null;
}

/**
 * A box ticked or not: true or false from JSON, what a form sends for a ticked box (`on`, or its
 * value), or nothing. A word that says neither (`"maybe"`) is refused rather than read as no, and a
 * form that sends the field twice (a hidden `0` before the box) is ticked when either says so.
 */
const TICKED = /^(on|true|1|yes)$/i;
const UNTICKED = /^(|off|false|0|no)$/i;
const isTick = (x: unknown) => x === true || (typeof x === 'string' && TICKED.test(x.trim()));
const saysEither = (x: unknown) => x == null || typeof x === 'boolean' || (typeof x === 'string' && (TICKED.test(x.trim()) || UNTICKED.test(x.trim())));
const checkbox = z.unknown().optional().transform((v, ctx) => {
  const said = Array.isArray(v) ? v : [v];
  if (said.length > 5 || !said.every(saysEither)) {
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  }
  return said.some(isTick);
});

/**
 * The private-use characters the letter's rendering marks fields with (fieldMark in
 * letter-template.ts): typed into a field, the letter would drop them and the line they are on,
 * and the preview would not. No keyboard makes them.
 */
const markFree = (v: string) => !/[\uE000-\uE002]/.test(v);

export const signatureInput = z.object({
  // One character is a whole name in some scripts (李, 김); empty is what is refused.
  // A name of marks alone (`<@>`) would sign the letter, and its From, as nobody.
  fullName: line(120).refine(markFree, NOT_TEXT).pipe(z.string().min(1, 'please give your full name').refine((v) => v === '' || /[\p{L}\p{N}]/u.test(v), 'please give your name in letters')),
  email,
  city: nullAsAbsent(line(100).refine(markFree, NOT_TEXT).optional().default('')),
  country: nullAsAbsent(line(100).refine(markFree, NOT_TEXT).optional().default('')),
  // The overrides that show text in the reverse of its order (U+202D, U+202E) make a note read one
  // way to the official and another way to the code; nobody types them. Embeddings and isolates,
  // which editors put around mixed right-to-left text, stay.
  personalNote: nullAsAbsent(prose(2000).refine((v) => !/[\u202d\u202e]/.test(v), 'must not contain text-direction override characters').refine(markFree, NOT_TEXT).optional().default('')),
  subscribe: checkbox,
});
export type SignatureInput = z.output<typeof signatureInput>;

export interface SignResult {
  kind: 'confirmation-sent' | 'signed' | 'already-signed';
  campaignSlug: string;
  /**
   * Whether the campaign asks signers to confirm by email. What a signer is told depends on this
   * alone, so the answer never shows whether an address signed before.
   */
  confirmationRequired: boolean;
  /**
   * The box asking for updates was ticked on a campaign that sends at once: an opt-in email asks
   * to confirm them (a confirmation page says so otherwise). Said of the box alone, as above.
   */
  alertsAsked: boolean;
}

export type ConfirmResult =
  | { kind: 'confirmed'; campaignSlug: string }
  | { kind: 'already-confirmed'; campaignSlug: string };
