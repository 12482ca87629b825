import type { Config } from '../config.ts';
import type { Queryable } from '../db/index.ts';
import { batchedRead, perDb } from '../deliveries/coalesce.ts';
import type { Composer } from '../deliveries/types.ts';
import { BULK, domainOf, listIdHeader, oneLine, orgSender } from '../mail/address.ts';
import { ensureManageToken, manageToken } from '../subscribers/service.ts';
import type { Views } from '../views.ts';
import * as q from './queries.ts';

export interface AlertEmailDeps {
  config: Pick<Config, 'orgName' | 'mailFrom' | 'publicUrl'>;
  views: Views;
  secret: string;
}

/** Alerts composed at once share one read: a fan-out sends thousands of them back to back. */
const alertParts = perDb((db: Queryable) =>
  batchedRead((pairs: { caseUpdateId: number; subscriberId: number }[]) => q.getAlertPartsBatch(db, pairs)),
);

/**
 * One case alert. Nothing is sent to someone who left or stopped following the case after the
 * fan-out, nor for an update withdrawn meanwhile. List-Unsubscribe comes from nodemailer's
 * `list` option, List-ID from listIdHeader; RFC 8058 one-click needs List-Unsubscribe-Post beside an https
 * List-Unsubscribe, and the POST it triggers is answered by `POST /unsubscribe/:token` without
 * any cookie or login.
 */
export function createAlertComposer({ config, views, secret }: AlertEmailDeps): Composer {
  const listDomain = domainOf(config.mailFrom.address);
  return async (db, delivery) => {
    if (delivery.subscriber_id === null) return null;
    const p = await alertParts(db)({ caseUpdateId: delivery.source_id, subscriberId: delivery.subscriber_id });
    if (!p || p.withdrawn || p.subscriber_status !== 'active' || !(p.follows_case || p.follows_all)) return null;
    const token = p.needs_manage_hash ? await ensureManageToken(db, secret, delivery.subscriber_id) : manageToken(secret, delivery.subscriber_id);
    const { unsubscribeUrl, ...content } = alertContent(config, views, {
      personName: p.person_name, followsCase: p.follows_case, location: p.location, caseStatus: p.case_status, language: p.language,
      title: p.title, body: p.body, publishedAt: p.published_at, caseSlug: p.case_slug,
    }, token);
    return {
      from: orgSender(config),
      to: delivery.recipient,
      ...content,
      list: {
        // One header with both ways out: the https one is what one-click POSTs to.
        unsubscribe: [[unsubscribeUrl, `mailto:${config.mailFrom.address}?subject=unsubscribe%20${token}`]],
      },
      headers: { ...BULK, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'List-ID': listIdHeader(`${config.orgName} case alerts`, `case-alerts.${listDomain}`) },
    };
  };
}

export interface AlertFacts {
  personName: string;
  /** Whether the subscriber follows this case, not only all cases. */
  followsCase: boolean;
  location: string | null;
  caseStatus: string;
  /** The case's language, which its title and body are written in; empty for the site's own. */
  language: string;
  title: string;
  body: string;
  publishedAt: Date;
  caseSlug: string;
}

/**
 * What an alert says, its subject and its parts, with the subscriber's links made from `token`:
 * for the composer, and for the console's preview of an update (with a stand-in token).
 */
export function alertContent(config: AlertEmailDeps['config'], views: Views, a: AlertFacts, token: string) {
  const unsubscribeUrl = `${config.publicUrl}/unsubscribe/${token}`;
  const body = views.email('alert', {
    orgName: config.orgName,
    personName: a.personName,
    followsCase: a.followsCase,
    location: a.location,
    caseStatus: a.caseStatus,
    language: a.language,
    title: a.title,
    body: a.body,
    publishedAt: a.publishedAt,
    caseUrl: `${config.publicUrl}/cases/${a.caseSlug}`,
    preferencesUrl: `${config.publicUrl}/preferences/${token}`,
    unsubscribeUrl,
  });
  return { subject: oneLine(`${a.personName}: ${a.title}`), ...body, unsubscribeUrl };
}
