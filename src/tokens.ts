import crypto from 'node:crypto';

/**
 * Tokens sent by email are derived from the server secret and the row they act on, so a worker
 * can put them in a message without anyone storing them: the database holds only their hash.
 */
export function deriveToken(secret: string, purpose: string, id: number): string {
  return crypto.createHmac('sha256', secret).update(`${purpose}:${id}`).digest('base64url');
}

/**
 * What the database keeps of the secret its links are derived from (settings `secret_fingerprint`):
 * a keyed hash of a constant, so a process with another secret is told, and the secret is not kept.
 */
export const secretFingerprint = (secret: string) => deriveToken(secret, 'secret-fingerprint', 0);

/** Random tokens shown once (API tokens). */
export function randomToken(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}

export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

/** IPs and addresses used as counters' keys: keyed, so the small IPv4 space can't be enumerated. */
export function hashIdentifier(secret: string, value: string): string {
  return crypto.createHmac('sha256', secret).update(`id:${value.toLowerCase()}`).digest('base64url').slice(0, 32);
}
