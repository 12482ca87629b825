import type { Queryable } from '../db/index.ts';
import { deriveToken, hashToken } from '../tokens.ts';
import * as q from './queries.ts';
import * as rq from './roster-queries.ts';
import type { Subscriber } from './types.ts';

// A subscriber's links (the opt-in link and the manage link every alert carries): derived from the
// server secret, their hashes kept on the row.

/** The link in opt-in email number `round`; a newer opt-in email makes older links stop working. */
export const optinToken = (secret: string, subscriber: Pick<Subscriber, 'id' | 'optin_round'>) =>
  deriveToken(secret, `subscriber-optin-${subscriber.optin_round}`, subscriber.id);

/** The link in every alert to the preferences page and to unsubscribe; it never changes. */
export const manageToken = (secret: string, subscriberId: number) => deriveToken(secret, 'subscriber-manage', subscriberId);

/**
 * Derives subscribers' kept links again from a new secret (see rotateSecret): the latest opt-in
 * link and the manage link every alert carries, so the next alert's unsubscribe works. Links
 * mailed before stop working.
 * @returns how many subscribers' links changed.
 */
export async function rederiveSubscriberLinks(db: Queryable, secret: string, pageSize = 1_000): Promise<number> {
  let changed = 0;
  for (let afterId = 0; ; ) {
    const page = await rq.listSubscriberLinks(db, afterId, pageSize);
    if (page.length === 0) return changed;
    afterId = page[page.length - 1]!.id;
    await rq.setSubscriberTokenHashes(db, page.map((s) => s.id), page.map((s) => hashToken(optinToken(secret, s))), page.map((s) => hashToken(manageToken(secret, s.id))));
    changed += page.length;
  }
}

/** Subscribers made by subscribeConfirmedSigner have no manage token hash until their first alert. */
export async function ensureManageToken(db: Queryable, secret: string, subscriberId: number): Promise<string> {
  const token = manageToken(secret, subscriberId);
  await q.setManageTokenHash(db, subscriberId, hashToken(token));
  return token;
}
