import type { Config } from '../config.ts';
import type { Composer } from '../deliveries/service.ts';
import { AUTOMATIC, stableMessageId } from '../mail/address.ts';
import type { Views } from '../views.ts';
import * as q from './queries.ts';
import { optinToken } from './service.ts';

export interface SubscriberEmailDeps {
  config: Pick<Config, 'orgName' | 'mailFrom' | 'publicUrl'>;
  views: Views;
  secret: string;
}

/**
 * The opt-in email: what the subscriber asked to follow and a link to a page whose button
 * confirms (mail scanners follow links, so the link itself changes nothing). Composed with the
 * current round's token; nothing is sent when nothing waits for confirmation any more.
 */
export function createOptinComposer({ config, views, secret }: SubscriberEmailDeps): Composer {
  return async (db, delivery) => {
    const subscriber = await q.getSubscriber(db, delivery.source_id);
    if (!subscriber) return null;
    const pending = await q.listSubscriptions(db, subscriber.id, 'pending');
    if (pending.length === 0) return null;
    const body = views.email('optin', {
      orgName: config.orgName,
      cases: pending.map((p) => ({ all: p.caseId === null, personName: p.personName })),
      // Someone already getting alerts loses nothing by ignoring it; nobody deletes their address.
      active: subscriber.status === 'active',
      confirmUrl: `${config.publicUrl}/subscribe/confirm/${optinToken(secret, subscriber)}`,
    });
    return {
      // One id per round: each new request sends a new email, with a new link, on the same row.
      messageId: stableMessageId(secret, `optin-${subscriber.optin_round}`, subscriber.id, config.mailFrom.address),
      from: { name: config.orgName, address: config.mailFrom.address },
      to: delivery.recipient,
      subject: `Please confirm: case alerts from ${config.orgName}`,
      headers: AUTOMATIC,
      ...body,
    };
  };
}
