import type { BackoffStrategy } from 'bullmq';

// What a failed send says (on its row, in logs) and when it goes again: apart from the send itself,
// which records it (settleFailure in send.ts).

/** Base of the retry backoff the row records; BullMQ's job backoff (queues.ts) is the timer. */
const RETRY_BASE_MS = 2_000;

interface SendError {
  responseCode?: number;
  code?: string;
  command?: string;
  response?: string;
  message?: string;
  /** nodemailer's kind of timeout: CONNECTION_TIMEOUT, GREETING_TIMEOUT, SOCKET_TIMEOUT. */
  timeoutType?: string;
}

/**
 * What the row's last_error keeps: codes and the relay's reply. Relays often quote the refused
 * address back ("550 5.1.1 <a@b>: …"); the row names its recipient already, so it is cut here,
 * and so is any other address in the reply (a forwarding target, another spelling of it), as
 * written or percent-encoded: the console shows errors to organizers who may not see
 * subscribers' addresses. One spelled out ("ann at example.org") is not recognised.
 */
export function describe(err: unknown, recipient: string): string {
  const e = err as SendError;
  // As written, and percent-encoded as in a link to the relay's help page ("?rcpt=a%40b").
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const quoted = new RegExp(`${escape(recipient)}|${escape(encodeURIComponent(recipient))}`, 'gi');
  // Cut to what is kept before it is searched: a relay's reply has no length limit of its own.
  const reply = (e.response ?? [e.responseCode, e.message ?? String(err)].filter(Boolean).join(' ')).slice(0, 1000);
  const cut = reply.replace(quoted, '[recipient]').replace(/[^\s<>()[\]"',;:]+@[^\s<>()[\]"',;:]+|[^\s<>()[\]"',;:&=?/]+%40[^\s<>()[\]"',;:&=?/]+/gi, '[address]');
  // Refused on our side, not the relay's: say why, or its "command not recognized" reads as theirs.
  const why = e.code === 'ETLS'
    ? ' (no working STARTTLS: Appeal sends a password to a relay on another machine only over TLS)'
    // nodemailer names every timeout CONN; a socket timeout is a connection gone silent once greeted,
    // as after the message (not a connection or greeting timeout): the relay may have it.
    : e.timeoutType === 'SOCKET_TIMEOUT' ? ' (the relay stopped answering; if it was taking the message, it may have it, and the next attempt is a copy)' : '';
  return [e.code, e.command, cut + why].filter(Boolean).join(' ').slice(0, 500);
}

/** What a thrown error may say: codes only, since it reaches logs and Redis. */
export function codesOf(err: unknown): string {
  const e = err as SendError;
  return [e.code, e.command, e.responseCode].filter(Boolean).join(' ') || 'error';
}

/**
 * A send to try again later; `relay` when the relay itself failed, not this one message, and
 * `relayReply` what it answered (as the row's last_error keeps it: no address), for the log (not
 * `detail`, which the log withholds as a database error's);
 * `attempt` the row's count, and `retryInMs` when the row says it goes again (sendBackoff).
 */
export class TemporaryFailure extends Error {
  override name = 'TemporaryFailure';
  constructor(
    message: string,
    readonly relay: boolean,
    readonly relayReply: string,
    readonly attempt: number,
    readonly retryInMs: number,
  ) {
    super(message);
  }
}

/**
 * How long after its `attempts`-th try a delivery goes again: doubling from RETRY_BASE_MS, each
 * between half and all of it so that letters refused together do not all come back together.
 */
export function retryDelay(attempts: number): number {
  const full = RETRY_BASE_MS * 2 ** (Math.max(1, attempts) - 1);
  return Math.round(full * (0.5 + Math.random() * 0.5));
}

/**
 * The send worker's BullMQ backoff (SEND_BACKOFF): the delay the row was given, so a job added
 * again by the sweeper (Redis restarted empty) waits as long as the letter's own attempts say,
 * not as its new job's count would. A job that failed before its row was claimed backs off by
 * its own count.
 */
export const sendBackoff: BackoffStrategy = (attemptsMade, _type, err) =>
  err instanceof TemporaryFailure ? err.retryInMs : retryDelay(attemptsMade);
