import type { Queryable } from '../db/index.ts';
import type { Message } from '../mail/transport.ts';

export type DeliveryKind = 'confirm' | 'optin' | 'letter' | 'digest' | 'alert' | 'welcome';
/** What each kind of email is, in an organizer's words. */
export const KIND_NAMES: Record<DeliveryKind, string> = {
  confirm: 'signature confirmation',
  optin: 'subscription confirmation',
  letter: 'letter',
  digest: 'digest',
  alert: 'case alert',
  welcome: 'welcome',
};
export type DeliveryStatus = 'queued' | 'sending' | 'retry' | 'sent' | 'failed';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['queued', 'sending', 'retry', 'sent', 'failed'];

export interface Delivery {
  id: number;
  kind: DeliveryKind;
  source_id: number;
  target_id: number | null;
  subscriber_id: number | null;
  campaign_id: number | null;
  recipient: string;
  status: DeliveryStatus;
  attempts: number;
  lease_until: Date | null;
  last_error: string | null;
  message_id: string | null;
  sent_at: Date | null;
  /** When the row was made: with its id, what tells it from a row of a restored or another database. */
  created_at: Date;
}

export type DeliveryCounts = Record<DeliveryStatus, number>;

/** Builds the message for a claimed delivery; null when what it served is gone. */
export type Composer = (db: Queryable, delivery: Delivery) => Promise<Message | null>;
export type Composers = Partial<Record<DeliveryKind, Composer>>;
