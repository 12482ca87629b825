/**
 * Bots fill every field; people never see `website`. A filled honeypot gets the answer a real
 * submission would get, mistakes included (see pretendToSign, pretendToSubscribe), so the bot
 * learns nothing, and nothing is stored or sent.
 */
export function honeypotFilled(body: unknown): boolean {
  const value = (body as { website?: unknown } | undefined)?.website;
  return typeof value === 'string' ? value.trim() !== '' : value !== undefined && value !== null && value !== false;
}
