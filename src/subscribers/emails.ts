import type { Config } from '../config.ts';
import type { Composer } from '../deliveries/types.ts';
import { AUTOMATIC, orgSender, stableMessageId } from '../mail/address.ts';
import type { Views } from '../views.ts';
import * as q from './queries.ts';
import { manageToken, optinToken } from './service.ts';
import { keptFor } from '../retention/service.ts';

export interface SubscriberEmailDeps {
  config: Pick<Config, 'orgName' | 'mailFrom' | 'publicUrl' | 'retentionUnconfirmedDays'>;
  views: Views;
  secret: string;
}

/**
 * The opt-in email: what the subscriber asked to follow and a link to a page whose button
 * confirms (mail scanners follow links, so the link itself changes nothing). Composed with the
 * current round's token. When nothing waits for confirmation, an active subscriber who asked
 * again (for what they follow already) gets the link to their preferences instead: asking is how
 * someone who lost every alert email finds the way to change or stop them. Otherwise nothing.
 */
export function createOptinComposer({ config, views, secret }: SubscriberEmailDeps): Composer {
  return async (db, delivery) => {
    const subscriber = await q.getSubscriber(db, delivery.source_id);
    if (!subscriber) return null;
    const pending = await q.listSubscriptions(db, subscriber.id, 'pending');
    if (pending.length === 0 && subscriber.status !== 'active') return null;
    const listed = (cases: typeof pending) => cases.map((p) => ({ all: p.caseId === null, personName: p.personName }));
    const envelope = {
      // One id per round: each new request sends a new email, with a new link, on the same row.
      messageId: stableMessageId(secret, `optin-${subscriber.optin_round}`, delivery, config.mailFrom.address),
      from: orgSender(config),
      to: delivery.recipient,
      headers: AUTOMATIC,
    };
    if (pending.length === 0) {
      return {
        ...envelope,
        subject: `Your case alerts from ${config.orgName}`,
        ...views.email('manage', {
          orgName: config.orgName,
          cases: listed(await q.listSubscriptions(db, subscriber.id, 'active')),
          manageUrl: `${config.publicUrl}/preferences/${manageToken(secret, subscriber.id)}`,
        }),
      };
    }
    return {
      ...envelope,
      subject: `Please confirm: case alerts from ${config.orgName}`,
      ...views.email('optin', {
        orgName: config.orgName,
        cases: listed(pending),
        // Someone already getting alerts loses nothing by ignoring it; nobody deletes their address.
        active: subscriber.status === 'active',
        // One who left, or whose address bounced, is kept as such a while longer (retention); only
        // the request goes when unconfirmed ones do.
        known: subscriber.status === 'unsubscribed' || subscriber.status === 'bounced',
        confirmUrl: `${config.publicUrl}/subscribe/confirm/${optinToken(secret, subscriber)}`,
        keptFor: keptFor(config.retentionUnconfirmedDays),
      }),
    };
  };
}
