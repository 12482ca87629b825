import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: children run with it as cwd so `--import tsx` resolves. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The V8 flags `npm run worker` starts a worker with (its heap limits), read from package.json so a
 * worker measured here has a deployed one's heap limits (it is loaded through tsx, not built).
 * Every worker-process child gets them, the baselines too: both sides of a comparison run on the
 * same Node settings.
 */
export const WORKER_NODE_FLAGS: string[] = (
  JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts.worker!.split(/\s+/).filter((arg) => arg.startsWith('--max-'));

type Handler = (args: Record<string, unknown>) => unknown;

interface Call {
  type: 'call';
  id: number;
  cmd: string;
  args: Record<string, unknown>;
}
interface Reply {
  type: 'reply';
  id: number;
  value?: unknown;
  error?: string;
}
interface Ready {
  type: 'ready';
  info: Record<string, unknown>;
}

export interface Child {
  pid: number;
  /** What the child said when it was ready (a port, say). */
  info: Record<string, unknown>;
  /** Runs one of the child's handlers and resolves with its value. */
  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  /**
   * With BENCH_PROFILE_DIR set, records a V8 CPU profile of the child while `fn` runs (the
   * measured part only, not start-up) into that directory; open it in Chrome DevTools.
   */
  profile<T>(fn: () => Promise<T>): Promise<T>;
  /** Asks the child to close what it opened and exit; kills it if it does not within 10 s. */
  stop(): Promise<void>;
}

/**
 * Starts `bench/lib/<script>` in its own Node process (with tsx) and waits until it says ready.
 * A server under test and the load that measures it must not share an event loop.
 */
export async function startChild(script: string, env: Record<string, string>): Promise<Child> {
  const child: ChildProcess = fork(path.join(ROOT, 'bench', 'lib', script), [], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    execArgv: [...(script === 'worker-process.ts' ? WORKER_NODE_FLAGS : []), '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error(`${script} exited (${code ?? signal})`));
    pending.clear();
  });
  child.on('message', (m: Reply) => {
    if (m.type !== 'reply') return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(new Error(`${script}: ${m.error}`));
    else p?.resolve(m.value);
  });
  const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 60 s`)), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready`));
    });
    child.on('message', (m: Ready) => {
      if (m.type !== 'ready') return;
      clearTimeout(timer);
      resolve(m.info);
    });
  });
  function call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    if (exited) return Promise.reject(new Error(`${script} has exited`));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ type: 'call', id, cmd, args } satisfies Call);
    });
  }
  const label = env.BENCH_ROLE ?? env.BENCH_WEB ?? path.basename(script, '.ts');
  return {
    pid: child.pid!,
    info,
    call,
    async profile(fn) {
      const dir = process.env.BENCH_PROFILE_DIR;
      if (!dir) return fn();
      await call('profile:start');
      try {
        return await fn();
      } finally {
        const profile = await call<string>('profile:stop');
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, `${label}-${child.pid}-${Date.now()}.cpuprofile`), profile);
      }
    },
    async stop() {
      if (exited) return;
      child.send({ type: 'call', id: 0, cmd: 'exit', args: {} } satisfies Call);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * The child's side: answers the parent's calls with `handlers`, then says ready with `info`.
 * `exit` runs `close` and ends the process; so does the parent going away.
 */
export function serveParent(handlers: Record<string, Handler>, close: () => Promise<void>, info: Record<string, unknown> = {}): void {
  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`bench child: close failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
    return closing;
  };
  process.on('disconnect', () => void shutdown());
  const session = new Session();
  handlers = {
    ...handlers,
    async 'profile:start'() {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    },
    async 'profile:stop'() {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      return JSON.stringify(profile);
    },
  };
  process.on('message', async (m: Call) => {
    if (m?.type !== 'call') return;
    if (m.cmd === 'exit') return void shutdown();
    const reply = (r: Omit<Reply, 'type' | 'id'>) => process.send?.({ type: 'reply', id: m.id, ...r } satisfies Reply);
    const handler = handlers[m.cmd];
    if (!handler) return reply({ error: `no handler "${m.cmd}"` });
    try {
      reply({ value: await handler(m.args) });
    } catch (err) {
      reply({ error: (err as Error).message });
    }
  });
  process.send?.({ type: 'ready', info } satisfies Ready);
}
