// How soon a signature is answered: never so soon that the time tells whether the address signed.
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The least time a signature takes to be answered. A first signature writes its confirmation
 * email's row, and right after it its job is added and, in a process that also sends, the email
 * composed; a repeat by an address that signed writes less and defers the rest. On an idle server
 * that is a millisecond or two, in the answer and in the request after it, which a few hundred
 * probes measure: whether an address signed. Every answer waits until this much has passed since
 * it began, by when, on a server not overloaded, either has done that work.
 */
export const SIGN_ANSWER_MIN_MS = 25;
/**
 * With this many signatures being answered at once in this process (their waits included), none
 * waits for SIGN_ANSWER_MIN_MS: the wait would only slow a burst (`npm run bench`, intake, where
 * autocannon's 50 connections lost 44 % of their rate to it). It is above RATE_LIMIT_PER_IP's
 * default of 20 posts in 10 minutes, and a bot's posts caught by the honeypot, which store nothing,
 * are not counted: a prober must post that many real signatures at once, from as many addresses
 * and to as many inboxes, to have one answered without the wait.
 */
export const SIGN_BUSY_AT = 24;

/** Signatures this process is answering now, their wait included. */
let answering = 0;

/**
 * How long the work of recent answers took, to wait as long as the slowest of them: a request for
 * alerts by a new address runs about nine statements before its answer, a repeat within the
 * minute four, and with the database a millisecond or two away (a managed Postgres in another
 * zone) the first ran past SIGN_ANSWER_MIN_MS and the other did not: whether someone had just
 * asked for that address's alerts, told apart four times in five by one probe. Kept by time, for
 * two minutes (a repeat is one within RESEND_GAP_SECONDS, a minute): kept by number, 32 quick
 * posts flushed out the slow one a probe was to be compared with, and one slowed by a burst of
 * page views set every answer's time until 31 more came, days later on a quiet campaign.
 */
const RECENT_MS = 120_000;
/** At most this many kept, the oldest dropped first: a quiet process makes few. */
const RECENT_MOST = 1_000;
const recent: { at: number; took: number }[] = [];
/**
 * Only the work of an answer begun with at most this many others being answered counts: under a
 * burst each answer's work is mostly its wait for the others, and a floor of that (100 ms and
 * more) held every answer of a busy moment as long as the slowest (`npm run bench`, intake: a
 * third of the rate lost). Probes of an idle server are what the floor is for.
 */
const QUIET_AT = 4;
/** The most any answer waits for the slowest recent work: a pause of the process is no norm. */
export const SIGN_ANSWER_MAX_MS = 1_000;

/** The least time an answer takes now: SIGN_ANSWER_MIN_MS, or the slowest recent work, if longer. */
export function answerFloor(now = performance.now()): number {
  while (recent.length > 0 && recent[0]!.at < now - RECENT_MS) recent.shift();
  let floor = SIGN_ANSWER_MIN_MS;
  for (const r of recent) floor = Math.max(floor, r.took);
  return Math.min(SIGN_ANSWER_MAX_MS, floor);
}

/**
 * Runs `work` for a signature's answer, answered no sooner than answerFloor() after it began
 * unless SIGN_BUSY_AT signatures are being answered; `counted`: whether it is one of those (not a
 * honeypot's pretence), whose time counts towards the floor when the process was quiet (QUIET_AT).
 */
export async function answeredAlike<T>(work: () => Promise<T>, counted = true): Promise<T> {
  const began = performance.now();
  const quiet = answering <= QUIET_AT;
  if (counted) answering++;
  try {
    const result = await work();
    if (counted && quiet) {
      const now = performance.now();
      recent.push({ at: now, took: now - began });
      if (recent.length > RECENT_MOST) recent.shift();
    }
    // Rounded up: a timer takes whole milliseconds, and would end the wait up to one early.
    if (answering < SIGN_BUSY_AT) await sleep(Math.max(0, Math.ceil(began + answerFloor() - performance.now())));
    return result;
  } finally {
    if (counted) answering--;
  }
}
