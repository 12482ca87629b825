import { pino } from 'pino';
import { ConfigError, loadConfig, type Config } from './config.ts';
import type { Db } from './db/index.ts';
import { openPostgres } from './db/index.ts';
import { openEmbeddedForCli } from './db/embedded.ts';
import { migrate } from './db/migrate.ts';
import { seedDemo } from './demo.ts';
import { addOrganizer, createApiToken } from './organizers/service.ts';
import { purgeUnconfirmed } from './retention/service.ts';

const USAGE = `Usage: npm run cli -- <command>

  migrate                       apply database migrations
  seed-demo                     add the demo cases and campaigns
  organizer:add <email> [--admin] [--name "Name"]
                                add an organizer; the password is read from stdin,
                                or generated and printed when stdin is a terminal or empty
  token:create <email> [--label "what for"]
                                create an API token for an organizer and print it
  purge                         delete unconfirmed signatures and subscribers now
`;

function fail(message: string): never {
  process.stderr.write(`appeal: ${message}\n`);
  process.exit(1);
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0]!.trim();
}

async function openDb(config: Config): Promise<{ db: Db; close(): Promise<void> }> {
  if (config.databaseUrl) {
    const db = openPostgres(config.databaseUrl, { max: 2 });
    return { db, close: () => db.close() };
  }
  return openEmbeddedForCli(config.dataDir, pino({ level: 'warn' }));
}

async function run(command: string | undefined, args: string[], db: Db, config: Config): Promise<void> {
  switch (command) {
    case 'migrate': {
      const applied = await migrate(db);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      return;
    }
    case 'seed-demo': {
      await migrate(db);
      const added = await seedDemo(db);
      process.stdout.write(added.length ? `added demo campaigns: ${added.join(', ')}\n` : 'demo campaigns exist already\n');
      return;
    }
    case 'organizer:add': {
      const email = args[0];
      if (!email || email.startsWith('--')) fail('organizer:add needs an email: npm run cli -- organizer:add you@example.org');
      const password = (await readStdin()) || undefined;
      const { organizer, generatedPassword } = await addOrganizer(db, {
        email,
        name: option(args, '--name'),
        role: args.includes('--admin') ? 'admin' : 'organizer',
        password,
      });
      process.stdout.write(`added ${organizer.role} ${organizer.email}\n`);
      if (generatedPassword) process.stdout.write(`password: ${generatedPassword}\n(shown once; change it after signing in)\n`);
      return;
    }
    case 'token:create': {
      const email = args[0];
      if (!email || email.startsWith('--')) fail('token:create needs an organizer email');
      const token = await createApiToken(db, email, option(args, '--label') ?? 'cli');
      process.stdout.write(`${token}\n`);
      return;
    }
    case 'purge': {
      const purged = await purgeUnconfirmed(db, config.retentionUnconfirmedDays);
      process.stdout.write(`purged ${purged.signatures} signatures and ${purged.subscribers} subscribers\n`);
      return;
    }
    default:
      process.stdout.write(USAGE);
      if (command && command !== 'help' && command !== '--help') process.exit(2);
  }
}

let config: Config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) fail(err.message);
  throw err;
}
const [command, ...args] = process.argv.slice(2);
if (!command || command === 'help' || command === '--help') {
  process.stdout.write(USAGE);
} else {
  let database: { db: Db; close(): Promise<void> } | undefined;
  try {
    database = await openDb(config);
    if (command !== 'migrate') await migrate(database.db);
    await run(command, args, database.db, config);
  } catch (err) {
    const e = err as Error & { fields?: Record<string, string> };
    const detail = e.fields ? ` (${Object.entries(e.fields).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '';
    await database?.close().catch(() => {});
    fail(`${e.message}${detail}`);
  }
  await database.close();
}
