import type { ParsedMail } from 'mailparser';
import type { TestContext } from './context.ts';
import { pastResendGap } from './signing.ts';

export const addressesOf = (a: ParsedMail['to']) => (Array.isArray(a) ? a : a ? [a] : []).flatMap((x) => x.value.map((v) => v.address));

/** Every message the sink got for `address` so far. */
export const mailsTo = (ctx: TestContext, address: string) => ctx.sink!.messages.filter((m) => addressesOf(m.to).includes(address));

/** The `nth` (1-based) message to `address`, waiting for it to arrive. */
export async function waitForMail(ctx: TestContext, address: string, nth = 1, timeoutMs = 20_000): Promise<ParsedMail> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = mailsTo(ctx, address)[nth - 1];
    if (found) return found;
    if (Date.now() > until) throw new Error(`message ${nth} to ${address} did not come in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The token of the first `/<path>/<token>` link in a message's text part. */
export function tokenIn(mail: ParsedMail, path: string): string {
  const match = new RegExp(`/${path}/([A-Za-z0-9_-]{20,})`).exec(mail.text ?? '');
  if (!match) throw new Error(`no /${path}/ link in the message`);
  return match[1]!;
}

export const postForm = (url: string, form: Record<string, string | string[]>) => {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const one of [v].flat()) body.append(k, one);
  return fetch(url, { method: 'POST', body, redirect: 'manual' });
};

export const postJson = (url: string, body: unknown, token?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });

export const getJson = async (url: string, token: string) => {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/**
 * Resolves once the opt-in email to `email` is recorded sent. The sink has it a moment before the
 * worker records it; a later ask for the same address sends anew only once it is.
 */
export async function optinSent(ctx: TestContext, email: string): Promise<void> {
  await eventually(async () => ((await ctx.db.query(`SELECT 1 FROM deliveries WHERE kind = 'optin' AND lower(recipient) = lower($1) AND status = 'sent'`, [email])).rowCount ? true : undefined));
}

/**
 * Subscribes through the public API and confirms through the emailed link's page, as a person
 * would. @returns the manage token from the confirmation page's preferences link.
 */
export async function subscribeAndConfirm(ctx: TestContext, base: string, email: string, caseSlug?: string): Promise<string> {
  const before = mailsTo(ctx, email).length;
  const res = await postJson(`${base}/api/v1/subscribers`, { email, ...(caseSlug ? { caseSlug } : {}) });
  if (res.status !== 202) throw new Error(`subscribe answered ${res.status}`);
  const optin = await waitForMail(ctx, email, before + 1);
  await optinSent(ctx, email);
  const pressed = await postForm(`${base}/subscribe/confirm/${tokenIn(optin, 'subscribe/confirm')}`, {});
  // The button's answer leads to the subscriber's own page.
  const manage = /^\/preferences\/([A-Za-z0-9_-]+)\?subscribed=1$/.exec(pressed.headers.get('location') ?? '');
  if (pressed.status !== 303 || !manage) throw new Error(`confirming answered ${pressed.status}`);
  // As if it happened a while ago: asking again for this address sends at once, not after the gap.
  await pastResendGap(ctx.db, email);
  return manage[1]!;
}

/** Polls until `check` returns a value that is not undefined. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
