import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * The process's log. A database error's `detail` quotes the row it concerns ("Key (email)=(…)
 * already exists", "Failing row contains (…)"), its `where` may quote a value it could not read,
 * and PGlite's errors carry the statement's `params`: any of them may hold a supporter's address
 * or name, so they are withheld; the error's code and message say what went wrong. A Redis
 * error's command arguments go too: a BullMQ script's are its whole Lua source and the jobs'
 * data, tens of kilobytes a line when Redis is out of memory. So does the pg client pg-pool pins
 * to an idle connection's error (its socket, its statement cache: over 10 kB a line).
 */
export function createLog(level: string, destination?: DestinationStream): Logger {
  const censor = (_value: unknown, path: string[]) =>
    path.at(-1) === 'args' ? '[withheld: the command\'s arguments]' : path.at(-1) === 'client' ? '[withheld: the pg client]' : '[withheld: may quote a row]';
  return pino({ level, redact: { paths: ['err.detail', 'err.where', 'err.params', 'err.command.args', 'err.client'], censor } }, destination);
}

/**
 * An 'error' listener that writes each kind of error once per `everyMs`, with how many of
 * that kind it left out since. While Redis is away every BullMQ worker and Redis client reports
 * the refused connection many times a second, and after it comes back empty each lost job says its key is
 * missing: a log that repeats them all buries everything else. Numbers in a message (job ids,
 * ports) do not make a new kind. `msg` may be worded for the error it is written for.
 */
export function throttledErrorLog<E extends Error = Error>(log: Record<'error' | 'warn', (obj: Record<string, unknown>, msg: string) => void>, msg: string | ((err: E) => string), everyMs = 30_000, level: 'error' | 'warn' = 'error'): (err: E, also?: Record<string, unknown>) => void {
  const seen = new Map<string, { at: number; left: number }>();
  return (err, also) => {
    // What else is written with it (a request's route, say) makes a kind of its own too.
    const kind = `${(err as { code?: string }).code ?? err.message.replace(/\d+/g, '#').slice(0, 120)}${also ? JSON.stringify(also) : ''}`;
    const now = Date.now();
    const last = seen.get(kind);
    if (last && now - last.at < everyMs) {
      last.left += 1;
      return;
    }
    // Bounded: kinds are few, but a route's path is the client's to choose when none matched.
    if (seen.size >= 1_000) seen.clear();
    seen.set(kind, { at: now, left: 0 });
    log[level]({ err, ...also, ...(last?.left ? { alikeLeftOut: last.left } : {}) }, typeof msg === 'string' ? msg : msg(err));
  };
}
