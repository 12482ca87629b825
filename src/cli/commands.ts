import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { CommandReply, CommandRequest } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';
import { seedDemo } from '../demo.ts';
import { addOrganizer, createApiToken, recordAudit, resetPassword } from '../organizers/service.ts';
import { forgetPerson, purgeExpired } from '../retention/service.ts';

export const USAGE = `Usage: npm run cli -- <command>

  migrate                       apply database migrations
  seed-demo                     add the demo cases and campaigns
  organizer:add <email> [--admin] [--name "Name"]
                                add an organizer; the password is read from stdin,
                                or generated and printed when stdin is a terminal or empty
  organizer:password <email>    set a new password for an organizer who lost theirs (read
                                from stdin, or generated and printed); ends their sessions
  token:create <email> [--label "what for"]
                                create an API token for an organizer and print it
  forget <email>                erase a supporter or subscriber on request: their signatures,
                                subscriptions and the emails to them that are still kept
  purge                         delete now what retention would: unconfirmed signatures and
                                subscribers, and subscribers who left or bounced long enough ago
`;

class UsageError extends Error {
  override name = 'UsageError';
}

type OptionSpec = Record<string, { type: 'string' | 'boolean' }>;

/**
 * A command's one email and its options, strictly: an unknown option, an option without its
 * value (`--name --admin`) or an argument too many is a usage error, not a silent guess.
 */
function parseCommand<O extends OptionSpec>(command: string, args: string[], options: O, usage: string) {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message.split('\n')[0]}\nusage: npm run cli -- ${usage}`);
  }
  const [email, ...extra] = parsed.positionals;
  if (!email) throw new UsageError(`${command} needs an email\nusage: npm run cli -- ${usage}`);
  if (extra.length) throw new UsageError(`${command}: unexpected argument "${extra[0]}"\nusage: npm run cli -- ${usage}`);
  return { email, values: parsed.values };
}

/** Runs one command and returns what to print: here, or in the app that holds the embedded database. */
async function run(db: Db, config: Pick<Config, 'retentionUnconfirmedDays' | 'retentionUnsubscribedDays'>, [command, ...args]: string[], stdin: string): Promise<string> {
  if (['migrate', 'seed-demo', 'purge'].includes(command!) && args.length) {
    throw new UsageError(`${command} takes no arguments (got "${args[0]}")`);
  }
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
      const { email, values } = parseCommand(command, args, { admin: { type: 'boolean' }, name: { type: 'string' } }, 'organizer:add <email> [--admin] [--name "Name"]');
      const { organizer, generatedPassword } = await addOrganizer(db, {
        email,
        name: values.name as string | undefined,
        role: values.admin ? 'admin' : 'organizer',
        password: stdin || undefined,
      });
      // As the console records it, by nobody signed in: a new admin is what an intruder would make.
      await recordAudit(db, null, 'organizer.add', `organizer:${organizer.id}`, { email: organizer.email, role: organizer.role, by: 'cli' });
      return `added ${organizer.role} ${organizer.email}\n` +
        (generatedPassword ? `password: ${generatedPassword}\n(shown once; change it after signing in)\n` : '');
    }
    case 'organizer:password': {
      const { email } = parseCommand(command, args, {}, 'organizer:password <email>');
      const { organizer, generatedPassword } = await resetPassword(db, email, stdin || undefined);
      return `new password set for ${organizer.email}; their sessions are ended\n` +
        (generatedPassword ? `password: ${generatedPassword}\n(shown once; change it after signing in)\n` : '');
    }
    case 'forget': {
      const { email } = parseCommand(command, args, {}, 'forget <email>');
      const f = await forgetPerson(db, email);
      return `forgot ${f.signatures} ${f.signatures === 1 ? 'signature' : 'signatures'}, ${f.subscribers} ${f.subscribers === 1 ? 'subscriber' : 'subscribers'} and ${f.emails} ${f.emails === 1 ? 'email' : 'emails'} to that address\n`;
    }
    case 'token:create': {
      const { email, values } = parseCommand(command, args, { label: { type: 'string' } }, 'token:create <email> [--label "what for"]');
      const label = (values.label as string | undefined) ?? 'cli';
      const token = await createApiToken(db, email, label);
      await recordAudit(db, null, 'token.create', `organizer:${email}`, { label, by: 'cli' });
      return `${token}\n`;
    }
    case 'purge': {
      const purged = await purgeExpired(db, config);
      const n = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;
      return `purged ${n(purged.signatures, 'signature', 'signatures')} and ${n(purged.subscribers, 'subscriber', 'subscribers')} never confirmed, and ${n(purged.unsubscribed, 'subscriber', 'subscribers')} who left or bounced\n`;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  }
}

/** A command's outcome as exit code and output; failures a person can cause become one line. */
export async function runCommand(db: Db, config: Pick<Config, 'retentionUnconfirmedDays' | 'retentionUnsubscribedDays'>, request: CommandRequest): Promise<CommandReply> {
  try {
    return { code: 0, stdout: await run(db, config, request.argv, request.stdin), stderr: '' };
  } catch (err) {
    const e = err as Error & { fields?: Record<string, string> };
    const detail = e.fields ? ` (${Object.entries(e.fields).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '';
    return { code: err instanceof UsageError ? 2 : 1, stdout: '', stderr: `appeal: ${e.message}${detail}\n` };
  }
}
