// How many emails a stranger's posts can have sent to one address: counted where they are sent.
import type { AppContext } from '../context.ts';
import { budget, counterPrefix, hourAndDay } from '../budgets.ts';
import { mailboxKey } from '../mail/address.ts';
import { hashIdentifier } from '../tokens.ts';
import type { Composer, Composers, DeliveryKind } from './types.ts';

/**
 * Confirmation and opt-in emails one address may be sent in an hour, and in a day: whoever posts
 * an address on a sign or subscribe form has it sent one, and the posts need not be its owner's.
 * With the hourly limit alone, a stranger could have it sent one every six minutes, day after day.
 */
export const ASKED_EMAILS_PER_HOUR = 10;
export const ASKED_EMAILS_PER_DAY = 20;

/**
 * How a confirmation held back for its address's allowance begins its last error (holdOverAllowance
 * in send.ts): a failure no retry mends, and one a stranger may have caused (see HELD_BACK).
 */
export const HELD_BACK_WORDS = 'not sent: ';

/** The emails a person asks for on a form, which therefore anyone can ask for on their behalf. */
export const ASKED_FOR: ReadonlySet<DeliveryKind> = new Set(['confirm', 'optin']);

/**
 * A confirmation or opt-in email not sent now because its address had its allowance (see
 * holdOverAllowance in send.ts for what becomes of it). The form that asked for it was answered
 * as any other: the allowance is counted here, out of sight, because a count a form's answer
 * showed (a 429 sooner than one's own posts explain) would tell a stranger that the address had
 * been used on this site within the hour or the day.
 */
export class AllowanceUsedError extends Error {
  /** `waitSeconds`: until the allowance that was used up has room again. */
  constructor(
    readonly window: 'hour' | 'day',
    readonly waitSeconds: number,
  ) {
    const most = window === 'hour' ? `${ASKED_EMAILS_PER_HOUR} within the hour` : `${ASKED_EMAILS_PER_DAY} within the day`;
    super(`this address had ${most}, as many confirmation and opt-in emails as Appeal sends one address (someone may be posting it on forms)`);
    this.name = 'AllowanceUsedError';
  }
}

/**
 * `composers` with the confirmation and opt-in composers counting each new email against its
 * address's allowance (ASKED_EMAILS_PER_HOUR, _PER_DAY), in Redis, shared by every worker and
 * keyed by a keyed hash of the inbox (`ann+1@…` and `ann+2@…` count as one). A retry of an email
 * already counted (after a 421, say) is not counted again; one asked for again is a new email.
 * An email over the allowance is not sent: its compose throws AllowanceUsedError, before the
 * composer runs, so the link of the email before it (which the composer would replace with the
 * new email's: useConfirmRound, useOptinRound) keeps working.
 */
export function withAddressAllowance(ctx: Pick<AppContext, 'config' | 'redis' | 'secret'>, composers: Composers): Composers {
  const allowance = hourAndDay(budget(ctx, 'email', ASKED_EMAILS_PER_HOUR, 3600), budget(ctx, 'email-day', ASKED_EMAILS_PER_DAY, 86_400));
  const counted = (compose: Composer): Composer => async (db, delivery) => {
    // attempts is 1 at a row's first try, and again once it is asked for anew (requeueFinished).
    if (delivery.attempts !== 1) return compose(db, delivery);
    const address = mailboxKey(delivery.recipient);
    const refused = await allowance.take(address);
    if (refused) throw new AllowanceUsedError(refused.window, refused.wait);
    try {
      const message = await compose(db, delivery);
      // Nothing to send (what it served is gone): no email, nothing counted.
      if (!message) await allowance.giveBack(address);
      return message;
    } catch (err) {
      await allowance.giveBack(address);
      throw err;
    }
  };
  return Object.fromEntries(Object.entries(composers).map(([kind, compose]) => [kind, ASKED_FOR.has(kind as DeliveryKind) ? counted(compose!) : compose]));
}

/**
 * The Redis keys of the counts of emails asked for `email` (withAddressAllowance's): a keyed hash
 * and a count each, which say for up to a day that the address was used. `forget` deletes them.
 */
export function addressCounterKeys(queuePrefix: string, secret: string, email: string): string[] {
  const id = hashIdentifier(secret, mailboxKey(email));
  return [`${counterPrefix(queuePrefix, 'email')}:${id}`, `${counterPrefix(queuePrefix, 'email-day')}:${id}`];
}
