import crypto from 'node:crypto';
import { z } from 'zod';
import { line, newSlug, nullAsAbsent, prose, slug } from '../cases/types.ts';
import { asciiAddress } from '../mail/address.ts';
import { DISCLOSE_LEVELS, LETTER_MAX_LENGTH, type Disclose } from './letter-template.ts';

export type CampaignStatus = 'draft' | 'live' | 'paused' | 'closed';
export type DeliveryMode = 'each' | 'digest';

export interface Campaign {
  id: number;
  /** Saves of its details and letter so far (see updateCampaignDetails). */
  revision: number;
  slug: string;
  case_id: number;
  title: string;
  summary: string;
  letter_subject: string;
  letter_body: string;
  status: CampaignStatus;
  /** Put away: closed while still a draft (or, before migration 031, closed with no launch on record and nobody signing): not public (see LAUNCHED). */
  discarded: boolean;
  delivery_mode: DeliveryMode;
  digest_hour: number;
  goal: number | null;
  require_confirmation: boolean;
  created_at: Date;
  updated_at: Date;
}

/**
 * SQL: the campaign `c` was launched, so its page is public and it announces its case: not a
 * draft, nor one closed as a draft (thrown away, not ended). See isLaunched.
 */
export const LAUNCHED = `(c.status <> 'draft' AND NOT c.discarded)`;

/** A campaign was launched: its page is public (LAUNCHED, in SQL). */
export function isLaunched<C extends Pick<Campaign, 'status' | 'discarded'>>(campaign: C): campaign is C & { status: Exclude<CampaignStatus, 'draft'> } {
  return campaign.status !== 'draft' && !campaign.discarded;
}

export interface Target {
  id: number;
  campaign_id: number;
  position: number;
  name: string;
  title: string;
  email: string;
  salutation: string;
  disclose: Disclose;
  /** No longer written to (see TARGET_WRITTEN); null for a target that is. */
  retired_at: Date | null;
}

/**
 * SQL: target `t` is one the signer of signature `s` saw, there when they signed (created_at,
 * which signing again renews). Letters and digests go only to those: a target added later, or
 * retired at the time and written to again since (target_absences), is not one they wrote to.
 * Compared in SQL, at the database's precision.
 */
export const TARGET_SEEN = `t.added_at <= s.created_at
  AND NOT EXISTS (SELECT 1 FROM target_absences ta WHERE ta.target_id = t.id AND s.created_at >= ta.retired_at AND s.created_at < ta.reinstated_at)`;

/**
 * Names the targets a page lists, as it shows them (name and title), and what each learns, so that
 * a letter goes only where its page said: a sign form sent from a page that listed others (one
 * added, a disclosure changed, a row renamed for another official while it was open) where letters
 * go without confirmation, or a confirmation page's button pressed after its list changed, is
 * refused rather than sent to them. An address the page does not show may be corrected. Without a
 * confirmed address (`confirmed` false) `full` gives no address, and so tells what `name_place`
 * does. targetsFingerprintOf is the same in SQL, for sign forms.
 */
export const targetsFingerprint = (targets: readonly { id: number; disclose: string; name: string; title: string | null }[], confirmed = false) =>
  crypto
    .createHash('md5')
    .update([...targets].sort((a, b) => a.id - b.id)
      .map((t) => `${t.id}:${t.disclose === 'full' && !confirmed ? 'name_place' : t.disclose}:${t.name}\u001f${t.title ?? ''}`).join(','))
    .digest('hex')
    .slice(0, 16);

/**
 * SQL: targetsFingerprint of campaign `c`'s targets still written to (those its page lists), read
 * from `listed`: rows of those targets (id, campaign_id, disclose, name, title), retired ones left out.
 */
export const targetsFingerprintOf = (listed: string) => `left(md5(coalesce((
    SELECT string_agg(t.id || ':' || CASE t.disclose WHEN 'full' THEN 'name_place' ELSE t.disclose END || ':' || t.name || chr(31) || t.title, ',' ORDER BY t.id)
      FROM ${listed} t WHERE t.campaign_id = c.id), '')), 16)`;

/** SQL: target `t` is still written to: no new letter or digest goes to a retired one. */
export const TARGET_WRITTEN = 't.retired_at IS NULL';

/**
 * SQL: signer `s` confirmed their address by email (its confirmation link's hash is kept). Signed
 * where confirmation is off, the address is only what was typed, and no official is given it.
 */
export const ADDRESS_CONFIRMED = 's.confirm_token_hash IS NOT NULL';

/**
 * zod's address pattern, with the top-level domain also in its ASCII form (`.xn--80ao21a`, `.қаз`)
 * in either case (`.XN--P1AI`, as an old list in capitals has it), and with the limits an address
 * that can exist keeps: at most 64 characters before the @ (RFC 5321), a label of the domain at most
 * 63, beginning and ending with a letter or digit (RFC 1035).
 */
const EMAIL = /^(?=[^@]{1,64}@)(?:[A-Za-z0-9_'+\-]+\.)*[A-Za-z0-9_'+\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?:[A-Za-z]{2,63}|xn--(?:[A-Za-z0-9\-]{0,58}[A-Za-z0-9]))$/i;

const emailAddress = (whenEmpty: string) =>
  z
    .string()
    .trim()
    .min(1, whenEmpty)
    // Aborting: the checks after it would otherwise run on a body-sized string.
    .max(254, { message: 'must be at most 254 characters', abort: true })
    // What a mail client's copy gives: `Ann Bek <ann@example.org>`, or a line of several addresses.
    .refine((v) => !/<[^<>@]*@[^<>]*>/.test(v), { message: 'must be the address alone, without a name or < >', abort: true })
    .refine((v) => v.indexOf('@') === v.lastIndexOf('@') || !/[\s,;]/.test(v.slice(v.indexOf('@') + 1, v.lastIndexOf('@'))), { message: 'must be one address only', abort: true })
    // Letters outside ASCII before the @ need SMTPUTF8 of every relay on the way, which few offer;
    // a domain in another script is taken in its ASCII form.
    .refine((v) => !v.includes('@') || /^[\x00-\x7f]*$/.test(v.slice(0, v.lastIndexOf('@'))), 'must have only Latin letters, digits and . _ \' + - before the @: addresses with other letters there cannot be sent to yet')
    .transform(asciiAddress)
    .pipe(z.string().max(254, 'must be at most 254 characters').pipe(z.email({ pattern: EMAIL, message: 'must be a valid email address' })));

/** A supporter's or subscriber's own address: left empty, they are asked for it. */
export const email = emailAddress('please give your email address');

/** Targets a campaign may write to at once (a parliament's members fit). */
export const MAX_TARGETS = 500;

export const targetInput = z.object({
  name: line(200).pipe(z.string().min(1, 'is required')),
  title: nullAsAbsent(line(200).optional().default('')),
  email: emailAddress('is required'),
  salutation: nullAsAbsent(line(200).optional().default('')),
  disclose: nullAsAbsent(z.enum(DISCLOSE_LEVELS, { message: `must be one of: ${DISCLOSE_LEVELS.join(', ')}` }).optional().default('name_place')),
});

export const campaignInput = z.object({
  slug,
  caseSlug: z.string().trim().min(1, 'choose the case this campaign is about').pipe(slug),
  title: line(200).pipe(z.string().min(1, 'is required')),
  summary: nullAsAbsent(prose(20_000).optional().default('')),
  letter: z.object({
    subject: line(LETTER_MAX_LENGTH.subject).pipe(z.string().min(1, 'is required')),
    body: prose(LETTER_MAX_LENGTH.body).pipe(z.string().min(1, 'is required')),
  }),
  targets: z
    .array(targetInput)
    .min(1, 'add at least one target')
    .max(MAX_TARGETS)
    // One letter per signature and address: a second target with the same email would never get one.
    .superRefine((targets, ctx) => {
      const seen = new Set<string>();
      targets.forEach((t, i) => {
        const key = t.email.toLowerCase();
        if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'email'], message: 'another target has this email already' });
        seen.add(key);
      });
    }),
  deliveryMode: nullAsAbsent(z.enum(['each', 'digest'], { message: 'must be one of: each, digest' }).optional().default('each')),
  digestHour: nullAsAbsent(z.number().int().min(0, 'must be an hour from 0 to 23').max(23, 'must be an hour from 0 to 23').optional().default(9)),
  goal: z.number().int().positive('must be a whole number of at least 1').max(100_000_000, 'must be at most 100,000,000').nullish(),
  requireConfirmation: nullAsAbsent(z.boolean().optional().default(true)),
});

/** A campaign as it is created: its slug not one the console's pages take (see newSlug). */
export const newCampaignInput = campaignInput.extend({ slug: newSlug });
export type CampaignInput = z.output<typeof campaignInput>;

export interface CampaignStats {
  signatures: { pending: number; confirmed: number };
  deliveries: { queued: number; sending: number; retry: number; sent: number; failed: number };
}
