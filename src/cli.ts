import fs from 'node:fs';
import path from 'node:path';
import { commandEmail, runCommand, SECRET_UNCHANGED, usageProblem, USAGE } from './cli/commands.ts';
import { counted } from './words.ts';
import { ConfigError, loadConfig, makeDataDir, type Config } from './config.ts';
import { openPostgres } from './db/index.ts';
import { importedWarning, lastImported } from './paths.ts';
import { createLog } from './log.ts';
import type { CommandReply, CommandRequest } from './db/embedded.ts';
import { randomToken } from './tokens.ts';

function fail(message: string): never {
  process.stderr.write(`appeal: ${message}\n`);
  process.exit(1);
}

/**
 * How long a piped stdin may stay silent before it counts as empty: a caller that leaves it open
 * and writes nothing (a script's spawn() that never ends it) would otherwise wait forever.
 */
const STDIN_QUIET_MS = 2_000;

/**
 * The first line of stdin as typed (spaces may be part of a password), once it is complete, at
 * the end of input, or after STDIN_QUIET_MS of silence; '' for a terminal, nothing, or a blank line.
 */
function readStdin(): Promise<string> {
  const stdin = process.stdin;
  if (stdin.isTTY) return Promise.resolve('');
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let quiet = setTimeout(silent, STDIN_QUIET_MS);
    function silent() {
      // Said, since a password piped later is not read: its writer sees a closed pipe.
      if (chunks.length === 0) process.stderr.write(`appeal: nothing came on stdin for ${STDIN_QUIET_MS / 1000} s: going on without it, so the password is generated (pipe yours at once, or close stdin to skip the wait)\n`);
      done();
    }
    function done() {
      clearTimeout(quiet);
      stdin.off('data', onData).off('end', done).off('error', done);
      // Nothing more is read: a pipe left open must not keep the process alive.
      stdin.destroy();
      const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!;
      resolve(line.trim() === '' ? '' : line);
    }
    function onData(chunk: Buffer) {
      chunks.push(chunk);
      clearTimeout(quiet);
      if (chunk.includes(0x0a)) done();
      else quiet = setTimeout(silent, STDIN_QUIET_MS);
    }
    stdin.on('data', onData).on('end', done).on('error', done);
  });
}

/**
 * Where the command runs: on Postgres when DATABASE_URL is set; in the running app when it holds
 * the embedded database (through its command socket); else on the embedded database directly.
 */
async function execute(config: Config, request: CommandRequest): Promise<CommandReply> {
  if (config.databaseUrl) {
    const db = openPostgres(config.databaseUrl, { max: 2, applicationName: 'appeal cli' });
    try {
      // Named as web and worker name it: what an operator reads when `migrate` cannot connect.
      await db.query('SELECT 1').catch((err: Error) => {
        throw new Error(`DATABASE_URL: cannot open the database: ${err.message}`);
      });
      return await runCommand(db, config, request);
    } finally {
      await db.close();
    }
  }
  // Whether the command goes to the running app or opens the database here.
  const imported = lastImported(config.dataDir);
  if (imported) process.stderr.write(`appeal: warning: ${importedWarning(imported)}\n`);
  const { embeddedHolder, EmbeddedBusyError, HolderGoneError, openEmbedded, sendCommand } = await import('./db/embedded.ts');
  let embedded: Awaited<ReturnType<typeof openEmbedded>> | undefined;
  for (let tries = 0; !embedded; tries++) {
    if (embeddedHolder(config.dataDir)) {
      try {
        return await sendCommand(config.dataDir, request);
      } catch (err) {
        // Let go of while the command waited: open it here, as when nobody held it.
        if (!(err instanceof HolderGoneError)) throw err;
      }
    }
    try {
      embedded = await openEmbedded(config.dataDir, createLog('warn'));
    } catch (err) {
      // Another process (a second cli started with this one) took it first: ask or wait for that one.
      if (!(err instanceof EmbeddedBusyError) || tries >= 3) throw err;
    }
  }
  // Said, not assumed: one who meant Postgres and forgot DATABASE_URL would otherwise add an
  // organizer to a database no deployed process reads.
  const where = path.resolve(config.dataDir);
  process.stderr.write(
    embedded.created
      ? `appeal: DATABASE_URL is not set, and DATA_DIR (${where}) held no database: a new, empty one was made there. If you meant the app's, set DATA_DIR to the directory it runs with\n`
      : `appeal: DATABASE_URL is not set: using the embedded database in ${where}\n`,
  );
  try {
    return await runCommand(embedded.db, config, request);
  } finally {
    await embedded.close();
  }
}

/**
 * The configuration, without DKIM: the cli sends no mail, and the key is often readable by the
 * service's user alone, not by the person running a command with the service's environment.
 */
function cliConfig(): Config {
  try {
    return loadConfig({ ...process.env, DKIM_DOMAIN: '', DKIM_SELECTOR: '', DKIM_PRIVATE_KEY_FILE: '' });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
}

/**
 * After `forget`: the counts of the confirmation and opt-in emails sent to the address, kept in
 * Redis (see forgetAddressCounters), deleted wherever the command ran.
 * @returns what to add to the command's output.
 */
async function forgetCounters(config: Config, email: string): Promise<CommandReply> {
  const [{ checkSecret, knownSecret }, { connectRedis }, { forgetAddressCounters }] = await Promise.all([import('./boot.ts'), import('./redis.ts'), import('./retention/service.ts')]);
  const secret = knownSecret(config);
  const notLookedFor = (why: string): CommandReply => ({ code: 0, stdout: '', stderr: `appeal: the rate-limit counters that name the address were not looked for: ${why} (run forget with the service's environment); they lapse on their own within a day\n` });
  // Their keys are keyed hashes: without the service's secret there is nothing to find them by.
  if (!secret) return notLookedFor('SESSION_SECRET is not set here');
  // Nor with another one, which would find none and say nothing of those left.
  if (config.databaseUrl) {
    const db = openPostgres(config.databaseUrl, { max: 1, applicationName: 'appeal cli' });
    try {
      await checkSecret(db, secret, { keep: false });
    } catch (err) {
      if (err instanceof ConfigError) return notLookedFor('SESSION_SECRET here is not the secret this database is tied to');
      throw err;
    } finally {
      await db.close();
    }
  }
  let redis;
  try {
    // The Redis `npm start` runs under DATA_DIR when nothing answers on the default address: its counters are there.
    redis = await connectRedis(config, { useSpawned: true });
  } catch (err) {
    return { code: 0, stdout: '', stderr: `appeal: the rate-limit counters that name the address were not reached (${(err as Error).message}); they lapse on their own within a day\n` };
  }
  try {
    const { deleted, fileKeepsThem } = await forgetAddressCounters(redis.client, config.queuePrefix, secret, email);
    const stdout = deleted ? `and ${deleted === 1 ? 'the rate-limit counter' : `${deleted} rate-limit counters`} that named it\n` : '';
    return { code: 0, stdout, stderr: fileKeepsThem ? `appeal: ${fileKeepsThem}\n` : '' };
  } finally {
    await redis.close();
  }
}

/** The installation id of the database at `url` (claimQueuePrefix's); undefined when nothing ever ran on it. */
async function installationAt(url: string): Promise<string | undefined> {
  const db = openPostgres(url, { max: 1, applicationName: 'appeal cli' });
  try {
    return (await db.query<{ value: string }>(`SELECT value FROM settings WHERE name = 'installation'`)).rows[0]?.value;
  } catch (err) {
    // No settings table yet (or no database): nothing ever ran on it. Any other failure (a
    // timeout, a refused login) says nothing of what runs, and must not let the command through.
    const code = (err as { code?: unknown }).code;
    if (code !== '42P01' && code !== '3D000') throw err;
    return undefined;
  } finally {
    await db.close();
  }
}

/**
 * A command that must not run beside running processes: refused while `npm start` holds the
 * embedded database (it would hand the command to the app), or while web or worker processes of
 * the database at DATABASE_URL note themselves in Redis (claimQueuePrefix), under any
 * QUEUE_PREFIX, on the Redis `npm start` runs under DATA_DIR too. A Redis out of reach tells
 * nothing, and the command runs, as README asks every process stopped first.
 */
async function refusedWhileAppRuns(config: Config, because: string): Promise<CommandReply | undefined> {
  if (!config.databaseUrl) {
    const { embeddedHolder } = await import('./db/embedded.ts');
    if (!embeddedHolder(config.dataDir)) return undefined;
    return { code: 1, stdout: '', stderr: `appeal: stop Appeal first: it holds the database in ${path.resolve(config.dataDir)} and ${because}\n` };
  }
  const [{ CLAIM_MS, runningProcesses }, { connectRedis }] = await Promise.all([import('./boot.ts'), import('./redis.ts')]);
  const installation = await installationAt(config.databaseUrl);
  if (!installation) return undefined;
  const redis = await connectRedis(config, { useSpawned: true }).catch(() => undefined);
  if (!redis) return undefined;
  try {
    const { running, prefixes } = await runningProcesses(redis.client, installation);
    if (running === 0) return undefined;
    return {
      code: 1,
      stdout: '',
      stderr: `appeal: stop every web and worker process first: ${running} ${running === 1 ? 'is' : 'are'} running on this database or a copy of it (QUEUE_PREFIX ${prefixes.map((p) => `"${p}"`).join(', ')}), and each ${because}; ` +
        `one that stopped without saying so is counted for ${CLAIM_MS / 1000} s\n`,
    };
  } finally {
    await redis.close();
  }
}

/**
 * rotate-secret runs here, never in a running app, which would go on deriving links from the
 * secret it started with. The new secret is SESSION_SECRET; unset, one is generated, written
 * beside DATA_DIR/secret first (so a full disk fails before the database changes), and put in its
 * place once the database has taken it.
 */
async function rotateSecretCommand(config: Config, request: CommandRequest): Promise<CommandReply> {
  const reply = await rotateInDatabase(config, request);
  if (reply.code !== 0 || reply.stdout === SECRET_UNCHANGED) return reply;
  const counters = await forgetOldCounters(config);
  return { ...reply, stdout: reply.stdout + counters.stdout, stderr: reply.stderr + counters.stderr };
}

/**
 * After rotate-secret: the rate-limit counts in Redis, keyed with the old secret (forgetAllCounters).
 * @returns what to add to the command's output.
 */
async function forgetOldCounters(config: Config): Promise<CommandReply> {
  const [{ runningProcesses }, { connectRedis }, { forgetAllCounters }] = await Promise.all([import('./boot.ts'), import('./redis.ts'), import('./retention/service.ts')]);
  let redis;
  try {
    redis = await connectRedis(config, { useSpawned: true });
  } catch (err) {
    return { code: 0, stdout: '', stderr: `appeal: the rate-limit counts kept with the old secret were not reached (${(err as Error).message}); they lapse on their own within a day\n` };
  }
  try {
    // Another installation's prefix (the cli's shell left with the default, say) is not this one's to clear.
    const holder = await redis.client.get(`${config.queuePrefix}:installation`);
    const ours = config.databaseUrl ? await installationAt(config.databaseUrl) : undefined;
    const othersRun = holder !== null && (ours ? holder !== ours : (await runningProcesses(redis.client, holder)).running > 0);
    if (othersRun) {
      return { code: 0, stdout: '', stderr: `appeal: the rate-limit counts under QUEUE_PREFIX "${config.queuePrefix}" were left alone: another installation runs under it (give rotate-secret the service's QUEUE_PREFIX to delete this one's); they lapse on their own within a day\n` };
    }
    const { deleted, fileKeepsThem } = await forgetAllCounters(redis.client, config.queuePrefix);
    return { code: 0, stdout: deleted ? `${counted(deleted, 'rate-limit count', 'rate-limit counts')} kept with the old secret (QUEUE_PREFIX "${config.queuePrefix}") deleted\n` : '', stderr: fileKeepsThem ? `appeal: ${fileKeepsThem}\n` : '' };
  } finally {
    await redis.close();
  }
}

async function rotateInDatabase(config: Config, request: CommandRequest): Promise<CommandReply> {
  const refused = await refusedWhileAppRuns(config, 'derives links from the secret it started with');
  if (refused) return refused;
  if (config.sessionSecret) return execute(config, request);
  const file = path.join(config.dataDir, 'secret');
  const next = `${file}.new`;
  makeDataDir(config.dataDir);
  fs.writeFileSync(next, `${randomToken(32)}\n`, { mode: 0o600 });
  let reply: CommandReply;
  try {
    reply = await execute({ ...config, sessionSecret: fs.readFileSync(next, 'utf8').trim() }, request);
  } catch (err) {
    fs.rmSync(next, { force: true });
    throw err;
  }
  if (reply.code !== 0) {
    fs.rmSync(next, { force: true });
    return reply;
  }
  try {
    fs.renameSync(next, file);
  } catch (err) {
    return { ...reply, code: 1, stderr: `appeal: the database took the secret in ${next}, but it could not replace ${file} (${(err as Error).message}): rename it yourself before starting\n` };
  }
  return { ...reply, stdout: `${reply.stdout}the new secret is in ${file} (SESSION_SECRET is not set: a process that sets it needs this one)\n` };
}

/**
 * import-embedded: the embedded database in DATA_DIR is copied into the empty one at DATABASE_URL
 * (copyDatabase), then renamed, kept but no longer opened: a later start without DATABASE_URL
 * must not carry on in the old copy as if nothing had moved.
 */
async function importEmbeddedCommand(config: Config): Promise<CommandReply> {
  const failed = (message: string): CommandReply => ({ code: 1, stdout: '', stderr: `appeal: ${message}\n` });
  const source = path.resolve(config.dataDir, 'pglite');
  if (!config.databaseUrl) return failed('import-embedded copies into the database at DATABASE_URL: set it to a new, empty PostgreSQL database');
  if (!fs.existsSync(path.join(source, 'PG_VERSION'))) return failed(`there is no embedded database in ${source} to import`);
  const { embeddedHolder, openEmbedded } = await import('./db/embedded.ts');
  if (embeddedHolder(config.dataDir)) return failed(`stop Appeal first: it holds the database in ${source} and would go on writing to it`);
  const { copyDatabase, NotEmptyError } = await import('./db/copy.ts');
  const target = openPostgres(config.databaseUrl, { max: 2, applicationName: 'appeal cli' });
  let counts;
  try {
    await target.query('SELECT 1').catch((err: Error) => {
      throw new Error(`DATABASE_URL: cannot open the database: ${err.message}`);
    });
    const embedded = await openEmbedded(config.dataDir, createLog('warn'));
    try {
      counts = await copyDatabase(embedded.db, target);
    } finally {
      await embedded.close();
    }
  } catch (err) {
    if (err instanceof NotEmptyError) return failed(err.message);
    throw err;
  } finally {
    await target.close();
  }
  // Not pglite.imported if an earlier import left one (the app then started afresh without DATABASE_URL).
  let kept = `${source}.imported`;
  for (let n = 2; fs.existsSync(kept); n++) kept = `${source}.imported-${n}`;
  fs.renameSync(source, kept);
  const rows = counts.reduce((sum, c) => sum + c.rows, 0);
  return {
    code: 0,
    stdout:
      `copied ${rows} ${rows === 1 ? 'row' : 'rows'} into the database at DATABASE_URL: ${counts.filter((c) => c.rows > 0).map((c) => `${c.table} ${c.rows}`).join(', ') || 'none'}\n` +
      `${source} is now ${kept}: kept, no longer used\n` +
      // It holds every address it had, out of reach of retention and `forget` from now on.
      `it still holds every supporter and subscriber it had, which retention and forget no longer reach: once the app runs on PostgreSQL and the data is checked there, delete it (rm -r ${kept})\n` +
      `start every process with this DATABASE_URL, the same QUEUE_PREFIX and the same secret (SESSION_SECRET, or ${path.resolve(config.dataDir, 'secret')})\n`,
    stderr: '',
  };
}

const argv = process.argv.slice(2);
// `token:create --help` asks for help too, and must not open a database or make a token.
if (argv[0] === 'help' || argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(USAGE);
} else if (!argv[0]) {
  // A script that forgot its command must not pass as if it had run one.
  process.stderr.write(`appeal: no command given\n${USAGE}`);
  process.exitCode = 2;
} else {
  let reply: CommandReply;
  try {
    // A mistake in the command line is said before a database is opened or stdin is waited on.
    const config = cliConfig();
    const command = argv[0];
    const run = async () => {
      const request = { argv, stdin: ['organizer:add', 'organizer:password'].includes(command) ? await readStdin() : '' };
      if (command === 'rotate-secret') return rotateSecretCommand(config, request);
      if (command === 'import-embedded') return importEmbeddedCommand(config);
      // A running app has numbers set aside already (signatures take them a hundred at a time).
      if (command === 'after-restore') return (await refusedWhileAppRuns(config, 'has row numbers set aside from before')) ?? execute(config, request);
      return execute(config, request);
    };
    reply = usageProblem(argv) ?? (await run());
    if (argv[0] === 'forget' && reply.code === 0) {
      const counters = await forgetCounters(config, commandEmail(argv));
      reply = { ...reply, stdout: reply.stdout + counters.stdout, stderr: reply.stderr + counters.stderr };
    }
  } catch (err) {
    fail((err as Error).message);
  }
  process.stdout.write(reply.stdout);
  process.stderr.write(reply.stderr);
  process.exitCode = reply.code;
}
