import { z } from 'zod';
import { line, prose } from '../cases/types.ts';

export interface CaseUpdate {
  id: number;
  case_id: number;
  title: string;
  body: string;
  published_by: number | null;
  published_at: Date;
  /** Subscribers counted when it was posted. */
  recipients: number;
  /** Alerts its fan-out made, once done (markFannedOut). */
  reached: number | null;
  fanned_out_at: Date | null;
  /** Taken back by an organizer: off the public page, its unsent alerts dropped. */
  withdrawn_at: Date | null;
  /** Alerts sent, and failed, whose rows were deleted once settled (foldSettledAlerts). */
  folded_sent: number;
  folded_failed: number;
}

export const caseUpdateInput = z.object({
  title: line(300).pipe(z.string().min(1, 'is required')),
  body: prose(20_000).pipe(z.string().min(1, 'is required')),
});

export interface AlertStats {
  recipients: number;
  sent: number;
  failed: number;
}

export interface FanoutResult {
  /** Deliveries this run created (a re-run after a crash creates only the missing ones). */
  created: number;
  /** Deliveries this run handed to the send queue, created now or left queued by a crashed run. */
  enqueued: number;
  pages: number;
}
