import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { CommandReply, CommandRequest } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';
import { seedDemo } from '../demo.ts';
import { addOrganizer, createApiToken } from '../organizers/service.ts';
import { purgeUnconfirmed } from '../retention/service.ts';

export const USAGE = `Usage: npm run cli -- <command>

  migrate                       apply database migrations
  seed-demo                     add the demo cases and campaigns
  organizer:add <email> [--admin] [--name "Name"]
                                add an organizer; the password is read from stdin,
                                or generated and printed when stdin is a terminal or empty
  token:create <email> [--label "what for"]
                                create an API token for an organizer and print it
  purge                         delete unconfirmed signatures and subscribers now
`;

class UsageError extends Error {
  override name = 'UsageError';
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs one command and returns what to print: here, or in the app that holds the embedded database. */
async function run(db: Db, config: Pick<Config, 'retentionUnconfirmedDays'>, [command, ...args]: string[], stdin: string): Promise<string> {
  if (command !== 'migrate') await migrate(db);
  switch (command) {
    case 'migrate': {
      const applied = await migrate(db);
      return applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n';
    }
    case 'seed-demo': {
      const added = await seedDemo(db);
      return added.length ? `added demo campaigns: ${added.join(', ')}\n` : 'demo campaigns exist already\n';
    }
    case 'organizer:add': {
      const email = args[0];
      if (!email || email.startsWith('--')) throw new UsageError('organizer:add needs an email: npm run cli -- organizer:add you@example.org');
      const { organizer, generatedPassword } = await addOrganizer(db, {
        email,
        name: option(args, '--name'),
        role: args.includes('--admin') ? 'admin' : 'organizer',
        password: stdin || undefined,
      });
      return `added ${organizer.role} ${organizer.email}\n` +
        (generatedPassword ? `password: ${generatedPassword}\n(shown once; change it after signing in)\n` : '');
    }
    case 'token:create': {
      const email = args[0];
      if (!email || email.startsWith('--')) throw new UsageError('token:create needs an organizer email');
      return `${await createApiToken(db, email, option(args, '--label') ?? 'cli')}\n`;
    }
    case 'purge': {
      const purged = await purgeUnconfirmed(db, config.retentionUnconfirmedDays);
      return `purged ${purged.signatures} signatures and ${purged.subscribers} subscribers\n`;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

/** A command's outcome as exit code and output; failures a person can cause become one line. */
export async function runCommand(db: Db, config: Pick<Config, 'retentionUnconfirmedDays'>, request: CommandRequest): Promise<CommandReply> {
  try {
    return { code: 0, stdout: await run(db, config, request.argv, request.stdin), stderr: '' };
  } catch (err) {
    const e = err as Error & { fields?: Record<string, string> };
    const detail = e.fields ? ` (${Object.entries(e.fields).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '';
    return { code: err instanceof UsageError ? 2 : 1, stdout: '', stderr: `appeal: ${e.message}${detail}\n` };
  }
}
