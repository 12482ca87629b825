import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The process's log. A database error's `detail` quotes the row it concerns ("Key (email)=(…)
 * already exists", "Failing row contains (…)"), its `where` may quote a value it could not read,
 * and PGlite's errors carry the statement's `params`: any of them may hold a supporter's address
 * or name, so they are withheld; the error's code and message say what went wrong.
 */
export function createLog(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: ['err.detail', 'err.where', 'err.params'], censor: '[withheld: may quote a row]' } }, destination);
}
