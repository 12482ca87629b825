import path from 'node:path';
import { pino } from 'pino';
import { runCommand, USAGE } from './cli/commands.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openPostgres } from './db/index.ts';
import type { CommandReply, CommandRequest } from './db/embedded.ts';

function fail(message: string): never {
  process.stderr.write(`appeal: ${message}\n`);
  process.exit(1);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // The first line as typed: spaces may be part of a password. A blank line means none given.
  const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!;
  return line.trim() === '' ? '' : line;
}

/**
 * Where the command runs: on Postgres when DATABASE_URL is set; in the running app when it holds
 * the embedded database (through its command socket); else on the embedded database directly.
 */
async function execute(config: Config, request: CommandRequest): Promise<CommandReply> {
  if (config.databaseUrl) {
    const db = openPostgres(config.databaseUrl, { max: 2 });
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
  const { embeddedHolder, openEmbedded, sendCommand } = await import('./db/embedded.ts');
  if (embeddedHolder(config.dataDir)) return sendCommand(config.dataDir, request);
  // Said, not assumed: one who meant Postgres and forgot DATABASE_URL would otherwise add an
  // organizer to a database no deployed process reads.
  process.stderr.write(`appeal: DATABASE_URL is not set: using the embedded database in ${path.resolve(config.dataDir)}\n`);
  const embedded = await openEmbedded(config.dataDir, pino({ level: 'warn' }));
  try {
    return await runCommand(embedded.db, config, request);
  } finally {
    await embedded.close();
  }
}

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) fail(err.message);
  throw err;
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
  const stdin = ['organizer:add', 'organizer:password'].includes(argv[0] ?? '') ? await readStdin() : '';
  let reply: CommandReply;
  try {
    reply = await execute(config, { argv, stdin });
  } catch (err) {
    fail((err as Error).message);
  }
  process.stdout.write(reply.stdout);
  process.stderr.write(reply.stderr);
  process.exitCode = reply.code;
}
