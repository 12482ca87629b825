import type { Db } from './db/index.ts';
import { rederiveConfirmLinks } from './signatures/service.ts';
import { rederiveSubscriberLinks } from './subscribers/service.ts';
import { secretFingerprint } from './tokens.ts';

export type RotateOutcome = { kind: 'same' } | { kind: 'rotated'; signatures: number; subscribers: number };

/**
 * Ties the database to a new secret, in one transaction: the fingerprint every process checks at
 * start (checkSecret), and the kept hashes of the links the new secret derives, so that the emails
 * sent from now on (a confirmation still waiting, the next alert's unsubscribe) carry links that
 * work, and every link mailed before, which someone holding the old secret could also forge, stops
 * working. Every process must be stopped first: one still running derives links from the old one.
 * @returns `same` when the database has this secret already (nothing changes).
 */
export async function rotateSecret(db: Db, secret: string): Promise<RotateOutcome> {
  return db.transaction(async (tx) => {
    const fingerprint = secretFingerprint(secret);
    // Locked, so two rotations at once go one after the other, and the second finds the first's.
    const { rows } = await tx.query<{ value: string }>(`SELECT value FROM settings WHERE name = 'secret_fingerprint' FOR UPDATE`);
    if (rows[0]?.value === fingerprint) return { kind: 'same' };
    await tx.query(
      `INSERT INTO settings (name, value) VALUES ('secret_fingerprint', $1) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
      [fingerprint],
    );
    return { kind: 'rotated', signatures: await rederiveConfirmLinks(tx, secret), subscribers: await rederiveSubscriberLinks(tx, secret) };
  });
}
