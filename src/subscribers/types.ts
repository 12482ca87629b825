import { z } from 'zod';
import { email } from '../campaigns/types.ts';
import { endSentence, slug } from '../cases/types.ts';

export type SubscriberStatus = 'pending' | 'active' | 'unsubscribed' | 'bounced';

export interface Subscriber {
  id: number;
  email: string;
  status: SubscriberStatus;
  optin_round: number;
  consent_at: Date | null;
  consent_source: string | null;
  consent_text: string | null;
  created_at: Date;
  confirmed_at: Date | null;
  unsubscribed_at: Date | null;
}

/** Where a subscription came from; stored with the wording that form showed. */
export type ConsentSource = 'subscribe page' | 'case page' | 'api' | 'sign form';

export const subscribeInput = z.object({
  email,
  /**
   * Absent or null: all cases. Empty or blank is refused: an embed whose case came out empty
   * would otherwise sign its visitors up for every case.
   */
  caseSlug: z
    .string()
    .trim()
    .min(1, 'must name a case; leave caseSlug out for every case')
    .pipe(slug)
    .nullish()
    .transform((v) => v ?? undefined),
});

/** One case a subscriber follows (caseId null: all cases). */
export interface Followed {
  caseId: number | null;
  slug: string | null;
  personName: string | null;
}

/**
 * The consent wording every subscribe form shows next to its button, and what the consent
 * record stores: the two must be the same text.
 */
export function consentWording(personName?: string | null): string {
  const about = personName ? `about ${personName}` : 'about every case';
  return `Email me updates ${endSentence(about)} I confirm by email first, and I can leave at any time with one click.`;
}

/** The checkbox label on the sign form (templates/partials/signatures/form.hbs). */
export const signFormWording = (personName: string) => `Email me updates about ${personName}`;

/**
 * What the opt-in page says above its button (templates/pages/subscribe-confirm.hbs): the words a
 * request through the API is consented with, as the asking page's own are not known here.
 */
export const optinPageWording = (personName?: string | null) =>
  `Confirm your subscription: you are about to get an email whenever there is news about ${personName ?? 'every case'}`;

/**
 * What the preferences page shows (templates/pages/preferences.hbs): a box ticked there is
 * consented with the legend and its label (the case's person, or every case).
 */
export const PREFERENCES_WORDING = { legend: 'Email me when there is news about', all: 'Every case, including new ones' };

/** What the signature confirmation page says of alerts asked for (templates/pages/confirm.hbs). */
export const CONFIRM_PAGE_WORDING = 'Case updates by email: Yes, once confirmed';
