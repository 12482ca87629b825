import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import type { Db } from '../db/index.ts';
import type { CommandReply, CommandRequest } from '../db/embedded.ts';
import { migrate } from '../db/migrate.ts';
import { countUnfinishedEmails, endEmailedConfirmLinks, RESTORE_GAP, skipIdsAfterRestore } from '../db/restore.ts';
import { email as addressSchema } from '../campaigns/types.ts';
import { seedDemo } from '../demo.ts';
import { addOrganizer, createApiToken, recordAudit, resetPassword } from '../organizers/service.ts';
import { ALERT_ROWS_KEPT_DAYS, forgetPerson, forgottenWords, purgeExpired } from '../retention/service.ts';
import { counted } from '../words.ts';
import { rotateSecret } from '../secret-rotation.ts';

export const USAGE = `Usage: npm run cli -- <command>

  migrate                       apply database migrations
  seed-demo                     add the demo cases and campaigns
  organizer:add <email> [--admin] [--name "Name"]
                                add an organizer; the password is read from stdin,
                                or generated and printed when stdin is a terminal, empty, or silent for 2 s
  organizer:password <email>    set a new password for an organizer who lost theirs (read
                                from stdin, or generated and printed); ends their sessions
  token:create <email> [--label "what for"]
                                create an API token for an organizer and print it
  forget <email>                erase a supporter or subscriber on request: their signatures
                                and their letters not yet sent, subscriptions, the emails to
                                them that are still kept, the suppression of their address (not
                                an official's), and the rate-limit counters in Redis that named it
  purge                         delete now what retention would: unconfirmed signatures and
                                subscribers, subscribers who left or bounced long enough ago,
                                and the alert emails of old updates (kept as counts)
  import-embedded               copy the embedded database in DATA_DIR/pglite into the empty
                                database at DATABASE_URL, with every process stopped; then
                                DATA_DIR/pglite is renamed pglite.imported
  after-restore                 after restoring a backup, before any process starts on it: number
                                new rows past those made after the backup, whose emailed links
                                would otherwise act on the new rows; end the confirmation links
                                emailed for signatures pending in the backup; say how many emails
                                were waiting to be sent
  rotate-secret                 tie the database to a new secret, with every process stopped:
                                SESSION_SECRET's value, or (unset) a new one written to
                                DATA_DIR/secret; every link emailed before stops working
`;

/** What rotate-secret says when the database has this secret already. */
export const SECRET_UNCHANGED = 'the database uses this secret already: nothing changed\n';

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

/** The commands that name an email, with their options and usage line. */
const WITH_EMAIL = {
  'organizer:add': { options: { admin: { type: 'boolean' }, name: { type: 'string' } }, usage: 'organizer:add <email> [--admin] [--name "Name"]' },
  'organizer:password': { options: {}, usage: 'organizer:password <email>' },
  forget: { options: {}, usage: 'forget <email>' },
  'token:create': { options: { label: { type: 'string' } }, usage: 'token:create <email> [--label "what for"]' },
} as const satisfies Record<string, { options: OptionSpec; usage: string }>;
const WITHOUT_ARGUMENTS = ['migrate', 'seed-demo', 'purge', 'rotate-secret', 'import-embedded', 'after-restore'];

/** A command line read; the values of its options as parseArgs gives them. */
type Parsed = { command: string; email: string; values: Record<string, unknown> };

/** @throws UsageError: an unknown command, a missing email, an unknown option or an argument too many. */
function parse([command = '', ...args]: string[]): Parsed {
  if (WITHOUT_ARGUMENTS.includes(command)) {
    if (args.length) throw new UsageError(`${command} takes no arguments (got "${args[0]}")`);
    return { command, email: '', values: {} };
  }
  if (!Object.hasOwn(WITH_EMAIL, command)) throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  const spec = WITH_EMAIL[command as keyof typeof WITH_EMAIL];
  return { command, ...parseCommand(command, args, spec.options, spec.usage) };
}

/** The email a command line names (`forget -- -x@example.org` names `-x@example.org`), once usageProblem found none wrong. */
export const commandEmail = (argv: string[]): string => parse(argv).email;

/**
 * What is wrong with a command line, before anything is opened: a typo must not create an
 * embedded database, nor wait on one that cannot be reached, to be told it is a typo (exit 2).
 */
export function usageProblem(argv: string[]): CommandReply | undefined {
  try {
    parse(argv);
    return undefined;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return { code: 2, stdout: '', stderr: `appeal: ${err.message}\n` };
  }
}

/** What the commands read of the configuration; `sessionSecret` is the new secret for rotate-secret. */
type CommandConfig = Pick<Config, 'retentionUnconfirmedDays' | 'retentionUnsubscribedDays' | 'sessionSecret'>;

/** Runs one command and returns what to print: here, or in the app that holds the embedded database. */
async function run(db: Db, config: CommandConfig, argv: string[], stdin: string): Promise<string> {
  const { command, email, values } = parse(argv);
  // Not after-restore: run by this version's cli on a backup of an older one being gone back to,
  // migrating it would make that version refuse the database ("migrated by a newer version").
  if (command !== 'migrate' && command !== 'after-restore') await migrate(db);
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
      const { organizer, generatedPassword } = await resetPassword(db, email, stdin || undefined);
      return `new password set for ${organizer.email}; their sessions are ended\n` +
        (generatedPassword ? `password: ${generatedPassword}\n(shown once; change it after signing in)\n` : '');
    }
    case 'forget': {
      // A typo that names no address at all would read as "nothing held on this person".
      if (!addressSchema.safeParse(email).success) throw new Error(`"${email}" is not an email address: nothing was looked for`);
      const f = await forgetPerson(db, email, 'cli');
      const { erased, unsent, sending } = forgottenWords(f);
      const also = f.alsoHeld.length
        ? `also held, and not erased: ${f.alsoHeld.join(', ')} (the same mailbox at most providers; run forget on ${f.alsoHeld.length === 1 ? 'it' : 'each'} if it is theirs)\n`
        : '';
      return `forgot ${erased}\n${unsent && `${unsent}\n`}${sending && `${sending}\n`}${also}`;
    }
    case 'token:create': {
      const label = (values.label as string | undefined) ?? 'cli';
      const { token, id } = await createApiToken(db, email, label);
      await recordAudit(db, null, 'token.create', `organizer:${email}`, { token: id, label, by: 'cli' });
      return `${token}\n`;
    }
    case 'purge': {
      const purged = await purgeExpired(db, config);
      const alerts = purged.alerts ? `; ${counted(purged.alerts, 'alert email', 'alert emails')} of updates over ${ALERT_ROWS_KEPT_DAYS} days old are now only counted` : '';
      return `purged ${counted(purged.signatures, 'signature', 'signatures')} and ${counted(purged.subscribers, 'subscriber', 'subscribers')} never confirmed, and ${counted(purged.unsubscribed, 'subscriber', 'subscribers')} who left or bounced${alerts}\n`;
    }
    case 'rotate-secret': {
      // The cli gives it: SESSION_SECRET, or one it generated (src/cli.ts).
      if (!config.sessionSecret) throw new Error('rotate-secret: no new secret given (SESSION_SECRET)');
      const rotated = await rotateSecret(db, config.sessionSecret);
      if (rotated.kind === 'same') return SECRET_UNCHANGED;
      return `the database now uses the new secret; the links of ${counted(rotated.signatures, 'signature', 'signatures')} and ${counted(rotated.subscribers, 'subscriber', 'subscribers')} were derived again, and every link emailed before stops working\n`;
    }
    case 'after-restore': {
      const moved = await skipIdsAfterRestore(db);
      const links = await endEmailedConfirmLinks(db);
      const unfinished = await countUnfinishedEmails(db);
      // A backup from before migration 017 has no `actor` column to record it in: the ids are what matters.
      await recordAudit(db, null, 'database.after_restore', 'database', { sequences: moved, gap: RESTORE_GAP, confirmLinksEnded: links.ended, by: 'cli' }).catch((err: { code?: string }) => {
        if (err.code !== '42703') throw err;
      });
      const waiting = unfinished.reduce((sum, k) => sum + k.n, 0);
      return (
        `new rows are numbered from ${RESTORE_GAP.toLocaleString('en-US')} past where the backup left off (${moved} sequences): links emailed from rows made after the backup name none of them\n` +
        (links.emailed ? `${counted(links.emailed, 'pending signature', 'pending signatures')} had a confirmation link emailed before the backup: those links no longer work (confirmed after the backup, pressed again they would send the letters twice); their signers sign again, and one who confirmed after the backup sends the letters again by doing so\n` : '') +
        (links.ended > links.emailed ? `${counted(links.ended - links.emailed, 'confirmation email', 'confirmation emails')} waiting to be sent will carry a new link, for the same reason\n` : '') +
        (waiting
          ? `${counted(waiting, 'email was', 'emails were')} waiting to be sent in the backup (${unfinished.map((k) => `${k.kind} ${k.n}`).join(', ')}): any that went out after the backup go again once a worker starts, a letter or an alert with the same Message-ID (many mail systems drop such a copy); see README, Backup and restore\n`
          : '') +
        // The backup holds again those erased since, and its waiting emails to them go with the first worker.
        'before any worker starts, run forget again for every erasure asked for since the backup\n'
      );
    }
    case 'import-embedded':
      // It opens two databases, not the one a command is given (src/cli.ts).
      throw new Error('import-embedded runs in the cli itself, with every process stopped');
    default:
      // parse names only the commands above.
      throw new Error(`no code runs the command "${command}"`);
  }
}

/** A command's outcome as exit code and output; failures a person can cause become one line. */
export async function runCommand(db: Db, config: CommandConfig, request: CommandRequest): Promise<CommandReply> {
  try {
    return { code: 0, stdout: await run(db, config, request.argv, request.stdin), stderr: '' };
  } catch (err) {
    const e = err as Error & { fields?: Record<string, string> };
    const detail = e.fields ? ` (${Object.entries(e.fields).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '';
    return { code: err instanceof UsageError ? 2 : 1, stdout: '', stderr: `appeal: ${e.message}${detail}\n` };
  }
}
