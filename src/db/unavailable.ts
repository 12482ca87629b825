// Errors that say the database could not be reached, is restarting, or will not take this
// process's work for now, not that a statement is wrong: the network's (NETWORK), and the SQLSTATEs
// of AWAY, each with what an operator reads of it (unavailableCause).

/** Socket errors of a server out of reach, for now: Postgres's here, Redis's too (workerErrorLog). */
export const NETWORK: ReadonlySet<unknown> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** The cause of a connection exception, and of an error with no SQLSTATE (a socket's). */
const UNREACHABLE = 'the database server could not be reached';

/** SQLSTATEs, whole or by the class they start, that say the database is away, and why in words. */
const AWAY: readonly (readonly [code: string, cause: string])[] = [
  ['53300', 'too many connections: raise max_connections or lower the processes\' pools'],
  ['53100', 'the database server\'s disk is full'],
  // A standby, or a primary demoted by a failover.
  ['25006', 'the database takes no writes (a standby, or a primary a failover demoted)'],
  ['3D000', 'no such database'],
  // 57P01–57P05: a server shutting down, starting, dropping its sessions or its database.
  ['57P0', 'the database server is shutting down, restarting or dropped the session'],
  // Class 28: a login refused (a password being rotated).
  ['28', 'the database refused the login'],
  // Class 08: connection exceptions (and a connection lost mid-statement: LOST_CONNECTION).
  ['08', UNREACHABLE],
];
const awayCause = (code: string) => AWAY.find(([start]) => code.startsWith(start))?.[1];

/**
 * A database not taking connections (`ALLOW_CONNECTIONS false`): SQLSTATE 55000, which a statement
 * gets too for its own mistakes (currval before nextval). The refused connection is FATAL, from the
 * server's CheckMyDatabase; the severity is in the server's language, the routine's name is not.
 */
const notTakingConnections = (e: { code?: unknown; severity?: unknown; routine?: unknown }) =>
  e.code === '55000' && (e.severity === 'FATAL' || e.routine === 'CheckMyDatabase');

/** What an operator reads of an error isDatabaseUnavailable or isDatabaseTooSlow counts: its cause, in words. */
export function unavailableCause(err: unknown): string {
  const code = String((err as { code?: unknown } | undefined)?.code ?? '');
  if (code === '55000') return 'the database takes no connections';
  if (code === '57014') return 'a statement took longer than this process allows (statement_timeout): the database is slow or busy';
  return awayCause(code) ?? UNREACHABLE;
}

/**
 * Whether `err` says the database is out of reach for now (NETWORK, AWAY, a database not taking
 * connections): worth trying again in a moment. A sent mark lost to any of these would
 * send its message twice, so they are retried through an outage. By code only, as the SMTP
 * failures are classified (STYLE.md).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  const e = (err ?? {}) as { code?: unknown };
  return typeof e.code === 'string' && (NETWORK.has(e.code) || awayCause(e.code) !== undefined || notTakingConnections(e));
}

/**
 * Whether `err` is a statement cancelled by the statement limit (57014, statement_timeout): a
 * database this slow is as good as away for whoever waits.
 */
export function isDatabaseTooSlow(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === '57014';
}

/**
 * What pg says, with no code, of a connection lost mid-statement (a server killed, a failover, a
 * network drop), never made within its time, or silent past the statement timeout: such errors are given SQLSTATE 08006
 * (connection_failure) here, so that isDatabaseUnavailable tells them by code as it tells the rest.
 */
const LOST_CONNECTION = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
  'Query read timeout',
]);

export function coded(err: unknown): unknown {
  if (err instanceof Error && (err as { code?: unknown }).code === undefined && LOST_CONNECTION.has(err.message)) {
    Object.assign(err, { code: '08006' });
  }
  return err;
}

/** `work`, its failure coded. */
export const codedFailure = <T>(work: Promise<T>): Promise<T> => work.catch((err: unknown) => Promise.reject(coded(err)));
