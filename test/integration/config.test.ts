import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerProcess } from '../helpers/processes.ts';
import { freePort, ROOT, runTsx, type Ran } from '../helpers/spawn.ts';
import { eventually } from '../helpers/subscribers.ts';

/**
 * Each bad value, the mode it starts, and the variable the one line must name. Every variable's
 * rules are in test/unit/config.test.ts; these show that a real start stops on them.
 */
const BAD: { env: Record<string, string>; mode?: string; names: string }[] = [
  { env: { PORT: 'abc' }, names: 'PORT' },
  { env: { SMTP_URL: 'nonsense' }, mode: 'worker', names: 'SMTP_URL' },
  // Read at start, before the database is opened or made.
  { env: { DKIM_DOMAIN: 'appeal.example', DKIM_SELECTOR: 's1', DKIM_PRIVATE_KEY_FILE: '/nonexistent/dkim.pem' }, names: 'DKIM_PRIVATE_KEY_FILE' },
  { env: { REDIS_URL: '127.0.0.1:6379' }, names: 'REDIS_URL' },
  // Valid values, but web alone cannot share the embedded database.
  { env: {}, mode: 'web', names: 'DATABASE_URL' },
  // Valid, but nothing answers there.
  { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' }, mode: 'worker', names: 'DATABASE_URL' },
  // A file, not a folder: nothing can be made under it, on the embedded database or not.
  { env: { DATA_DIR: '/dev/null/appeal' }, names: 'DATA_DIR' },
  { env: { DATA_DIR: '/dev/null/appeal', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test' }, mode: 'worker', names: 'DATA_DIR' },
  // A folder that takes no new folder, not even as root: Node 20's recursive mkdir spun there for good.
  { env: { DATA_DIR: '/proc/appeal/data' }, names: 'DATA_DIR' },
];

/** The local ports of a process's TCP sockets (Linux: its fds' socket inodes in /proc/net/tcp*). */
function localPortsOf(pid: number): number[] {
  const inodes = new Set(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]; } catch { return undefined; } }).filter(Boolean));
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((table) => fs.readFileSync(table, 'utf8').split('\n').slice(1))
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols.length > 9 && inodes.has(cols[9]))
    .map((cols) => parseInt(cols[1]!.split(':')[1]!, 16));
}

describe('starting with a bad configuration', () => {
  let dataDir: string;
  let results: Ran[];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-config-'));
    results = await Promise.all(
      BAD.map((b, i) => runTsx('src/main.ts', b.mode ? [b.mode] : [], { DATA_DIR: path.join(dataDir, String(i)), LOG_LEVEL: 'silent', ...b.env }, { timeoutMs: 60_000 })),
    );
  }, 90_000);
  afterAll(() => {
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it.each(BAD.map((b, i) => [Object.entries(b.env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || '(none)', b.mode ?? 'all', b.names, i] as const))(
    '%s in mode %s exits non-zero with one line naming %s',
    (_env, _mode, name, i) => {
      const { code, stdout, stderr } = results[i]!;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const lines = stderr.trimEnd().split('\n');
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^appeal: ${name}: \\S`));
      expect(stdout).toBe('');
    },
  );

  it('writes nothing in DATA_DIR for web alone on the embedded database, nor for a bad DKIM key', () => {
    // The refusal comes before the secret is made or the database opened: no ./data is left behind.
    expect(fs.existsSync(path.join(dataDir, String(BAD.findIndex((b) => b.mode === 'web'))))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, String(BAD.findIndex((b) => 'DKIM_DOMAIN' in b.env))))).toBe(false);
  });
});

describe('starting on a port that is taken', () => {
  it('exits non-zero naming PORT instead of saying it runs', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '0.0.0.0', r));
    const port = (taken.address() as AddressInfo).port;
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-port-'));
    try {
      const { code, stdout, stderr } = await runTsx('src/main.ts', [], { DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'silent', QUEUE_PREFIX: `port-${port}` }, { timeoutMs: 60_000 });
      expect(code).toBe(1);
      expect(stderr.trimEnd()).toMatch(new RegExp(`^appeal: PORT: cannot listen on ${port}: .*EADDRINUSE.*: another program \\(another Appeal, say\\) listens on it; stop it, or set PORT to another port$`));
      expect(stdout + stderr).not.toContain('is running');
    } finally {
      taken.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('starting with another secret than the database was first used with', () => {
  it('stops naming SESSION_SECRET, instead of mailing links that never work; the same secret starts', async () => {
    const { createTestContext } = await import('../helpers/context.ts');
    const { checkSecret } = await import('../../src/boot.ts');
    const ctx = await createTestContext({ db: 'postgres' });
    try {
      // A process with this context's secret came first.
      await checkSecret(ctx.db, ctx.env.SESSION_SECRET!);
      await checkSecret(ctx.db, ctx.env.SESSION_SECRET!);
      const { code, stdout, stderr } = await runTsx('src/main.ts', ['worker'], { ...ctx.env, SESSION_SECRET: 'another-secret-of-enough-length', LOG_LEVEL: 'silent' }, { timeoutMs: 60_000 });
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(stderr).toMatch(/^appeal: SESSION_SECRET: this database is tied to another secret/);
    } finally {
      await ctx.close();
    }
  });
});

describe('a web process of its own without PUBLIC_URL, given a DATABASE_URL beside an embedded database', () => {
  it('warns that its share links and cookies are for this machine, and that the embedded data is not used', async () => {
    const { createTestContext } = await import('../helpers/context.ts');
    const { spawn } = await import('node:child_process');
    const ctx = await createTestContext({ db: 'postgres' });
    // What the default start left in DATA_DIR before DATABASE_URL was set.
    fs.mkdirSync(path.join(ctx.dataDir, 'pglite'), { recursive: true });
    fs.writeFileSync(path.join(ctx.dataDir, 'pglite', 'PG_VERSION'), '17\n');
    const port = String(await freePort());
    const web = spawn(process.execPath, ['scripts/start.mjs', 'web'], { cwd: ROOT, env: { ...process.env, ...ctx.env, PORT: port, PUBLIC_URL: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      let said = '';
      web.stderr!.on('data', (c: Buffer) => void (said += c.toString()));
      await eventually(async () => (said.includes('Appeal (web) is running.') ? true : undefined), 60_000);
      expect(said).toContain(`Warning: PUBLIC_URL is not set: the share links on its pages start with http://localhost:${port}`);
      expect(said).toContain(`  Open http://localhost:${port}/\n`);
      expect(said).not.toContain('Listening on port');
      expect(said).toContain(`Warning: DATABASE_URL is set, and ${path.resolve(ctx.dataDir, 'pglite')} holds an embedded database this process does not use. To move its data, stop Appeal and run: npm run cli -- import-embedded`);
    } finally {
      web.kill('SIGTERM');
      await new Promise((r) => web.once('exit', r));
      await ctx.close();
    }
  });
});

describe('a start without DATABASE_URL after import-embedded moved the data to Postgres', () => {
  it('warns that this process uses a new embedded database, naming the newest folder the imports left', async () => {
    const { spawn } = await import('node:child_process');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-imported-'));
    // Three imports: pglite.imported, then -2 ... -10 is the newest, though -9 sorts after it by name.
    for (const name of ['pglite.imported', 'pglite.imported-9', 'pglite.imported-10']) {
      fs.mkdirSync(path.join(dataDir, name));
      fs.writeFileSync(path.join(dataDir, name, 'PG_VERSION'), '17\n');
    }
    const port = String(await freePort());
    const { deletePrefix, TEST_REDIS_URL } = await import('../helpers/context.ts');
    const app = spawn(process.execPath, ['scripts/start.mjs'], {
      cwd: ROOT, env: { ...process.env, DATABASE_URL: '', DATA_DIR: dataDir, PORT: port, PUBLIC_URL: 'https://appeal.example.org', TRUST_PROXY: '1', REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: `imported-${port}`, LOG_LEVEL: 'silent' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    // Made at once: an app that died starting has fired its exit already, and the cleanup must not wait for another.
    const exited = new Promise((r) => app.once('exit', r));
    try {
      let said = '';
      app.stderr!.on('data', (c: Buffer) => void (said += c.toString()));
      await eventually(async () => (said.includes('Appeal (all) is running.') ? true : undefined), 60_000);
      expect(said).toContain(`Warning: DATABASE_URL is not set, and import-embedded moved the embedded database to PostgreSQL (${path.join(dataDir, 'pglite.imported-10')} is what it left): the embedded database used here is another, without that data`);
      // Behind a proxy, where PUBLIC_URL is the proxy's: the port to point it at too.
      expect(said).toContain(`  Open https://appeal.example.org/\n  Listening on port ${port}\n`);
    } finally {
      app.kill('SIGTERM');
      await exited;
      fs.rmSync(dataDir, { recursive: true, force: true });
      await deletePrefix(`imported-${port}`);
    }
  }, 90_000);
});

describe('a signal while it starts', () => {
  // SIGHUP: the terminal closed, or the SSH session it ran in dropped.
  it.each(['SIGTERM', 'SIGHUP'] as const)('%s: stops once it is up, as it would have, leaving no lock files behind, instead of being killed mid-start', async (signal) => {
    const { spawn } = await import('node:child_process');
    const crypto = await import('node:crypto');
    const { deletePrefix, TEST_REDIS_URL } = await import('../helpers/context.ts');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-signalled-'));
    const env = {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, REDIS_URL: TEST_REDIS_URL, PORT: String(await freePort()),
      QUEUE_PREFIX: `test-${crypto.randomBytes(5).toString('hex')}`, SESSION_SECRET: crypto.randomBytes(24).toString('base64url'), LOG_LEVEL: 'info',
    };
    const app = spawn(process.execPath, ['scripts/start.mjs'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    app.stdout!.on('data', (c: Buffer) => void (out += c.toString()));
    app.stderr!.on('data', (c: Buffer) => void (out += c.toString()));
    const exited = new Promise<[number | null, string | null]>((r) => app.once('exit', (code, signal) => r([code, signal])));
    try {
      // The embedded database is being opened (and then migrated and given its demo data).
      await eventually(async () => (fs.existsSync(path.join(dataDir, 'pglite.pid')) ? true : undefined), 60_000);
      app.kill(signal);
      expect(await exited).toEqual([0, null]);
      expect(out).toContain(`"signal":"${signal}","msg":"shutting down: finishing in-flight work"`);
      expect(out).not.toContain('is running');
      expect(fs.readdirSync(dataDir).filter((f) => f.startsWith('pglite.'))).toEqual([]);
    } finally {
      app.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
      await deletePrefix(env.QUEUE_PREFIX);
    }
  }, 90_000);
});

describe('a first start that fails before it runs', () => {
  it('does not tie the database to its secret: a start with the right one after it runs', async () => {
    const { createTestContext } = await import('../helpers/context.ts');
    const { checkSecret } = await import('../../src/boot.ts');
    const ctx = await createTestContext({ db: 'postgres' });
    try {
      // Another secret, and nothing answers at REDIS_URL: refused for Redis, and nothing kept.
      const unreachable = { ...ctx.env, SESSION_SECRET: 'a-first-secret-of-enough-length', REDIS_URL: 'redis://127.0.0.1:9', LOG_LEVEL: 'silent' };
      const { code, stderr } = await runTsx('src/main.ts', ['worker'], unreachable, { timeoutMs: 60_000 });
      expect(code).toBe(1);
      expect(stderr).toMatch(/^appeal: REDIS_URL: /);
      expect((await ctx.db.query(`SELECT 1 FROM settings WHERE name = 'secret_fingerprint'`)).rowCount).toBe(0);
      // Nor a start whose port is taken: it never ran, so it emailed no link.
      const taken = net.createServer();
      await new Promise<void>((r) => taken.listen(0, '0.0.0.0', r));
      try {
        const port = String((taken.address() as AddressInfo).port);
        const busy = await runTsx('src/main.ts', ['web'], { ...unreachable, REDIS_URL: ctx.env.REDIS_URL!, PORT: port }, { timeoutMs: 60_000 });
        expect(busy.code).toBe(1);
        expect(busy.stderr).toMatch(/^appeal: PORT: cannot listen/);
      } finally {
        taken.close();
      }
      expect((await ctx.db.query(`SELECT 1 FROM settings WHERE name = 'secret_fingerprint'`)).rowCount).toBe(0);
      // One that runs keeps its secret: a later one with another is refused.
      const worker = await startWorkerProcess({ ...ctx.env, LOG_LEVEL: 'info' });
      let names;
      try {
        // Its sessions say what they are, for whoever reads pg_stat_activity: those on its own
        // sockets' ports (other tests' processes run beside it).
        names = await ctx.db.query<{ n: string }>(`SELECT DISTINCT application_name AS n FROM pg_stat_activity WHERE client_port = ANY($1::int[])`, [localPortsOf(worker.pid)]);
      } finally {
        worker.kill('SIGTERM');
        await worker.exited;
      }
      expect(names.rows).toEqual([{ n: 'appeal worker' }]);
      expect((await ctx.db.query(`SELECT 1 FROM settings WHERE name = 'secret_fingerprint'`)).rowCount).toBe(1);
      await checkSecret(ctx.db, ctx.env.SESSION_SECRET!);
      await expect(checkSecret(ctx.db, 'a-first-secret-of-enough-length')).rejects.toThrow(/^SESSION_SECRET: /);
    } finally {
      await ctx.close();
    }
  });
});

describe('two installations on one Redis with the same QUEUE_PREFIX', () => {
  it('refuses the second while the first holds the prefix, naming QUEUE_PREFIX, and lets it start once the first stopped', async () => {
    const { createTestContext } = await import('../helpers/context.ts');
    const { claimQueuePrefix } = await import('../../src/boot.ts');
    const { ConfigError } = await import('../../src/config.ts');
    const [a, b] = [await createTestContext({ db: 'postgres' }), await createTestContext({ db: 'postgres' })];
    const log = { error: () => undefined, warn: () => undefined };
    const prefix = `${a.env.QUEUE_PREFIX}-shared`;
    try {
      const first = await claimQueuePrefix(a.db, a.redis.client, prefix, log);
      // Alone on its database: nothing to warn of (looked for after the claim, by SCAN, before the astray one below starts).
      expect(await first.elsewhere).toEqual([]);
      // Another process of the same installation (the same database) shares it.
      const sameInstallation = await claimQueuePrefix(a.db, a.redis.client, prefix, log);
      const refused = await claimQueuePrefix(b.db, b.redis.client, prefix, log).catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(ConfigError);
      expect((refused as Error).message).toMatch(/^QUEUE_PREFIX: ".*" is in use on this Redis by another Appeal installation/);
      // One of its processes stopping leaves the claim to the others: it is still refused.
      await sameInstallation.release();
      expect(await claimQueuePrefix(b.db, b.redis.client, prefix, log).catch((err: unknown) => err)).toBeInstanceOf(ConfigError);
      // A process of the same database on another prefix (a web started without QUEUE_PREFIX, say) is told.
      const warned: string[] = [];
      const astray = await claimQueuePrefix(a.db, a.redis.client, `${prefix}-astray`, { ...log, warn: ((_: unknown, message: string) => void warned.push(message)) as never });
      expect(await astray.elsewhere).toEqual([prefix]);
      expect(warned).toEqual([expect.stringMatching(new RegExp(`^processes of this database also run under QUEUE_PREFIX "${prefix}": they share no queue with this one \\("${prefix}-astray"\\)`))]);
      await astray.release();
      await first.release();
      const second = await claimQueuePrefix(b.db, b.redis.client, prefix, log);
      await second.release();

      // Stopping while Redis is away does not wait for it: the claim lapses on its own.
      const { Redis } = await import('ioredis');
      const away = new Redis(a.redis.options);
      const held = await claimQueuePrefix(a.db, away, prefix, log);
      away.disconnect();
      const started = Date.now();
      await held.release();
      expect(Date.now() - started).toBeLessThan(500);
    } finally {
      await a.redis.client.del(`${prefix}:installation`, `${prefix}:installation:processes`);
      await a.close();
      await b.close();
    }
  });
});
