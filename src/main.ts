import fs from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Booted } from './boot.ts';
import { ConfigError, configWarnings, loadConfig, type Config } from './config.ts';
import { settlesWithin } from './deadline.ts';
import { relayFailureWords, relayHint } from './mail/transport.ts';
import { importedWarning, lastImported } from './paths.ts';
import type { Workers } from '../workers/index.ts';

type Mode = 'all' | 'web' | 'worker';

/** How long a stopping web process lets requests in progress finish. */
const REQUESTS_CLOSE_MS = 10_000;
/**
 * How long a web process's statement may go unanswered by Postgres before its request is answered
 * 503 (a server gone silent, not one refusing). Only `npm run web`: a worker's statements (a purge,
 * a fan-out page) may rightly take longer, and its sends wait out an outage anyway.
 */
const WEB_STATEMENT_TIMEOUT_MS = 30_000;

function fatal(message: string): never {
  process.stderr.write(`appeal: ${message}\n`);
  process.exit(1);
}

/** The config from the environment; a bad variable is named, and the process exits. */
function loadConfigOrExit(): Readonly<Config> {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fatal(err.message);
    throw err;
  }
}

// SIGHUP: the terminal closed, or the SSH session dropped; left to kill it, a redis-server of its own stayed behind.
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * A signal while it starts (migrating, seeding, starting Redis) is kept until it is up, and it
 * then stops as it would have: killed outright, it left a redis-server and lock files behind.
 * A second one stops it at once, as later.
 * @returns what hands the signals to `stop` once it is up, and tells the one kept meanwhile.
 */
function holdSignalsWhileStarting(): (stop: (signal: string) => Promise<void>) => NodeJS.Signals | undefined {
  let asked: NodeJS.Signals | undefined;
  const askedEarly = (signal: NodeJS.Signals) => {
    if (asked) process.exit(1);
    asked = signal;
  };
  for (const signal of SIGNALS) process.on(signal, askedEarly);
  return (stop) => {
    for (const signal of SIGNALS) {
      process.removeListener(signal, askedEarly);
      process.on(signal, () => void stop(signal));
    }
    return asked;
  };
}

/** The web server listening on `port`; when it cannot, what boot opened is closed and the process exits saying why. */
function listenOrExit(ctx: Booted, port: number, createServer: () => Server): Promise<Server> {
  // Not app.listen: Express 5 hands a listen error to its callback, which would read as success.
  return new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject).listen(port, () => resolve(s));
  }).catch(async (err: Error) => {
    await ctx.close();
    const hint = (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
      ? ': another program (another Appeal, say) listens on it; stop it, or set PORT to another port'
      : (err as NodeJS.ErrnoException).code === 'EACCES' ? ': ports under 1024 need privileges; set PORT to one above, behind a proxy' : '';
    return fatal(`PORT: cannot listen on ${port}: ${err.message}${hint}`);
  });
}

/**
 * Stops the process on a signal: requests and jobs first, letting the work in flight finish, then
 * what boot opened. A second signal stops it at once.
 */
function gracefulStop(ctx: Booted, log: Logger, server: Server | undefined, workers: Workers | undefined) {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // A second Ctrl-C: the operator would rather not wait.
      log.warn({ signal }, 'stopping now, without waiting for the work in flight');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight work');
    // Stop taking requests and jobs first; in-flight sends finish before connections close.
    const closing = server && new Promise((r) => server!.close(r));
    server?.closeIdleConnections();
    await workers?.close();
    if (closing && !(await settlesWithin(closing, REQUESTS_CLOSE_MS))) server!.closeAllConnections();
    await ctx.close();
    process.exit(0);
  };
  return { stop, stopping: () => stopping };
}

/** The lines that tell the person who started it what runs, and where. */
function runningLines(mode: Mode, config: Readonly<Config>, ctx: Booted, runs: { web: boolean; workers: boolean }): string[] {
  const lines = [`Appeal (${mode}) is running.`];
  if (runs.web) {
    lines.push(`  Open ${config.publicUrl}/`);
    // Behind a proxy PUBLIC_URL is the proxy's address: the port to point it at is said too.
    if (new URL(config.publicUrl).origin !== `http://localhost:${config.port}`) lines.push(`  Listening on port ${config.port}`);
  }
  lines.push(`  Database: ${config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `embedded PGlite in ${config.dataDir}/pglite`}`);
  if (runs.workers) {
    lines.push(ctx.mailer.kind === 'outbox'
      ? `  Mail: written as .eml files to ${ctx.mailer.outboxDir} (set SMTP_URL to send for real)`
      : '  Mail: sent through SMTP_URL');
  }
  return lines;
}

/**
 * What an operator is warned of at start: the config's warnings, PUBLIC_URL left unset, Redis
 * evicting keys (`evicting`, evictionWarning's), and an embedded database this process does not use.
 */
function startWarnings(mode: Mode, config: Readonly<Config>, ctx: Booted, runs: { web: boolean; workers: boolean }, evicting: string | undefined): string[] {
  const warnings = configWarnings(config, { web: runs.web });
  // Its default is this process's own address: fine for trying Appeal with the dev outbox, not
  // for a worker beside a web process (nothing answers on its port) or for real mail.
  if (!process.env.PUBLIC_URL?.trim()) {
    if (mode === 'worker') {
      warnings.push(`PUBLIC_URL is not set: links in the emails this worker sends start with ${config.publicUrl}, its own port, where no web process answers. Set the web's PUBLIC_URL here too`);
    } else if (mode === 'web') {
      // A web process of its own is a deployment, not a try on this machine.
      warnings.push(`PUBLIC_URL is not set: the share links on its pages start with ${config.publicUrl}, and the console's cookies are not marked Secure. Set PUBLIC_URL to the public https address, as on the workers`);
    } else if (runs.workers && ctx.mailer.kind === 'smtp') {
      warnings.push(`PUBLIC_URL is not set: links in the emails sent through SMTP_URL start with ${config.publicUrl}, which opens on this machine alone. Set PUBLIC_URL to the public address`);
    }
  }
  if (evicting) warnings.push(evicting);
  // What an install started on the default and then given a DATABASE_URL left behind: its data is
  // not in the database this process uses.
  const embedded = path.resolve(config.dataDir, 'pglite');
  if (config.databaseUrl && fs.existsSync(path.join(embedded, 'PG_VERSION'))) {
    warnings.push(`DATABASE_URL is set, and ${embedded} holds an embedded database this process does not use. To move its data, stop Appeal and run: npm run cli -- import-embedded (into an empty database)`);
  }
  // The other way round: started without the DATABASE_URL that import-embedded moved the data to.
  // This process made a new embedded database (demo data and all), which the data is not in.
  const imported = config.databaseUrl ? undefined : lastImported(config.dataDir);
  if (imported) warnings.push(importedWarning(imported));
  return warnings;
}

/**
 * A wrong password or an untrusted certificate would otherwise show only as letters retried.
 * Not waited for: a relay down for a moment holds up no start.
 */
function verifyRelay(ctx: Booted, log: Logger, stopping: () => boolean): void {
  ctx.mailer.verify().catch((err: unknown) => {
    if (stopping()) return;
    const reply = relayFailureWords(err);
    const warning = `the mail relay at SMTP_URL failed a test connection (${reply}): ${relayHint(reply)}. Letters wait and are retried until it works`;
    process.stderr.write(`  Warning: ${warning}.\n`);
    log.warn(warning);
  });
}

async function main(mode: Mode): Promise<void> {
  const config = loadConfigOrExit();
  const handOverSignals = holdSignalsWhileStarting();
  // The rest is opened and started only once config is valid, so a bad variable is reported before
  // anything is made or connected (under tsx, before it is even loaded).
  const [{ boot }, { createLog }, { isEmpty, seedDemo }, { countOrganizers }, { createWebApp, createWebServer }, { startWorkers }, { evictionWarning }] = await Promise.all([
    import('./boot.ts'),
    import('./log.ts'),
    import('./demo.ts'),
    import('./organizers/service.ts'),
    import('./web/app.ts'),
    import('../workers/index.ts'),
    import('./redis.ts'),
  ]);
  const log = createLog(config.logLevel);
  let ctx: Booted;
  try {
    ctx = await boot(config, { allowEmbedded: mode === 'all', log, statementTimeoutMs: mode === 'web' ? WEB_STATEMENT_TIMEOUT_MS : undefined, applicationName: mode === 'all' ? 'appeal' : `appeal ${mode}` });
  } catch (err) {
    fatal((err as Error).message);
  }

  if (mode === 'all' && (await isEmpty(ctx.db))) {
    const added = await seedDemo(ctx.db);
    log.info({ campaigns: added }, 'empty database: demo campaigns added');
  }

  let server: Server | undefined;
  let workers: Workers | undefined;
  if (mode !== 'worker') {
    const app = createWebApp(ctx);
    server = await listenOrExit(ctx, config.port, () => createWebServer(app));
  }
  if (mode !== 'web') workers = await startWorkers(ctx);
  try {
    await ctx.keepSecret();
  } catch (err) {
    // Another process with another secret started at the same moment and kept its own.
    server?.close();
    await workers?.close();
    await ctx.close();
    fatal((err as Error).message);
  }

  const { stop, stopping } = gracefulStop(ctx, log, server, workers);
  // Before the line that says it is running: whoever reads it may stop it at once, and a signal
  // with no handler yet would kill it with its sends in flight.
  const asked = handOverSignals(stop);
  if (asked) return stop(asked);

  const runs = { web: !!server, workers: !!workers };
  const lines = runningLines(mode, config, ctx, runs);
  const warnings = startWarnings(mode, config, ctx, runs, await evictionWarning(ctx.redis.client));
  for (const warning of warnings) {
    lines.push(`  Warning: ${warning}.`);
    log.warn(warning);
  }
  if (server && (await countOrganizers(ctx.db)) === 0) {
    lines.push('  No organizer yet. Create the first admin with:  npm run cli -- organizer:add you@example.org --admin');
  }
  // For the person who started it; stdout is the JSON log's alone, for whatever collects it.
  process.stderr.write(lines.join('\n') + '\n');
  log.info({ mode, url: server ? `${config.publicUrl}/` : undefined }, 'started');
  if (workers && ctx.mailer.kind === 'smtp') verifyRelay(ctx, log, stopping);
}

const mode = (process.argv[2] ?? 'all') as Mode;
if (!['all', 'web', 'worker'].includes(mode)) fatal(`unknown mode "${mode}"; use web, worker, or nothing for both`);
await main(mode);
