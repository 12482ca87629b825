import type { ParsedMail } from 'mailparser';
import type { Queryable } from '../../src/db/index.ts';
import { RESEND_GAP_SECONDS } from '../../src/deliveries/service.ts';
import type { SmtpSink } from './smtp-sink.ts';

/** Addresses in a parsed To / From / Reply-To header. */
export const addressOf = (a: ParsedMail['to'] | ParsedMail['from'] | ParsedMail['replyTo']) =>
  (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

/** Everything a recipient can read in a message: every header, the text, the HTML, attachments. */
export const everything = (m: ParsedMail) =>
  JSON.stringify({
    headers: [...m.headers.entries()],
    text: m.text,
    html: m.html,
    attachments: m.attachments.map((a) => a.content.toString('utf8')),
  });

export function confirmToken(mail: ParsedMail): string {
  const match = /\/confirm\/([A-Za-z0-9_-]+)/.exec(mail.text ?? '');
  if (!match) throw new Error('no confirmation link in the email');
  return match[1]!;
}

export function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(url, { method: 'POST', body: new URLSearchParams(form), redirect: 'manual', headers });
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
    redirect: 'manual',
  });
}

/** Polls until `check` returns a truthy value; throws after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The messages to one address, once at least `n` have arrived. */
export function mailTo(sink: SmtpSink, address: string, n = 1): Promise<ParsedMail[]> {
  const to = () => sink.messages.filter((m) => addressOf(m.to).some((a) => a?.toLowerCase() === address.toLowerCase()));
  return until(() => (to().length >= n ? to() : undefined), `${n} message(s) to ${address}`);
}

/** Resolves when no delivery is waiting or in flight, so the sink holds everything that will be sent. */
export async function settled(db: Queryable): Promise<void> {
  await until(async () => {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM deliveries WHERE status IN ('queued', 'sending', 'retry')",
    );
    return rows[0]!.n === 0;
  }, 'every delivery to be sent');
}

/** Row counts of the tables a request could write, to show that a refused one wrote nothing. */
export async function rowCounts(db: Queryable): Promise<Record<string, number>> {
  const tables = ['cases', 'campaigns', 'targets', 'signatures', 'deliveries', 'subscribers', 'subscriptions', 'audit_log'];
  const { rows } = await db.query<Record<string, number>>(
    `SELECT ${tables.map((t) => `(SELECT count(*)::int FROM ${t}) AS ${t}`).join(', ')}`,
  );
  return rows[0]!;
}

/**
 * As if the resend gap had passed since the last email to `email` went or failed: confirmation
 * and opt-in rows asked for again sooner hold their next email back (RESEND_GAP_SECONDS). Call it
 * once that email is sent (or failed), before asking again.
 */
export async function pastResendGap(db: Queryable, email: string): Promise<void> {
  await db.query(
    `UPDATE deliveries SET sent_at = sent_at - make_interval(secs => $2), updated_at = updated_at - make_interval(secs => $2)
      WHERE lower(recipient) = lower($1) AND kind IN ('confirm', 'optin') AND status IN ('sent', 'failed')`,
    [email, RESEND_GAP_SECONDS],
  );
}
