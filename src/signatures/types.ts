import { z } from 'zod';
import { email } from '../campaigns/types.ts';
import { line, nullAsAbsent, prose } from '../cases/types.ts';

export interface Signature {
  id: number;
  campaign_id: number;
  full_name: string;
  email: string;
  city: string;
  country: string;
  personal_note: string;
  status: 'pending' | 'confirmed';
  /** Times signing again replaced it while pending; the confirmation page sends the one it showed. */
  edits: number;
  subscribe: boolean;
  created_at: Date;
  confirmed_at: Date | null;
}

const checkbox = z
  .union([z.boolean(), z.string(), z.array(z.string())], { message: 'must be true or false' })
  .nullish()
  .transform((v) => (Array.isArray(v) ? v.length > 0 : v === true || (typeof v === 'string' && /^(on|true|1|yes)$/i.test(v))));

export const signatureInput = z.object({
  // One character is a whole name in some scripts (李, 김); empty is what is refused.
  fullName: line(120).pipe(z.string().min(1, 'please give your full name')),
  email,
  city: nullAsAbsent(line(100).optional().default('')),
  country: nullAsAbsent(line(100).optional().default('')),
  // The overrides that show text in the reverse of its order (U+202D, U+202E) make a note read one
  // way to the official and another way to the code; nobody types them. Embeddings and isolates,
  // which editors put around mixed right-to-left text, stay.
  personalNote: nullAsAbsent(prose(2000).refine((v) => !/[\u202d\u202e]/.test(v), 'must not contain text-direction override characters').optional().default('')),
  subscribe: checkbox,
});
export type SignatureInput = z.output<typeof signatureInput>;

export interface SignResult {
  kind: 'confirmation-sent' | 'signed' | 'already-signed';
  campaignSlug: string;
  /**
   * Whether the campaign asks signers to confirm by email. What a signer is told depends on this
   * alone, so the answer never shows whether an address signed before.
   */
  confirmationRequired: boolean;
}

export type ConfirmResult =
  | { kind: 'confirmed'; campaignSlug: string }
  | { kind: 'already-confirmed'; campaignSlug: string };
