import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** What src/main.ts prints once its workers take jobs. */
const READY_LINE = 'Appeal (worker) is running.';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerProcess {
  pid: number;
  /** Resolves once the process has exited, however it ended. */
  exited: Promise<Exit>;
  /** What the process wrote to stdout and stderr so far, for failure messages. */
  output(): string;
  kill(signal: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

/** `npm run worker` without npm: the same node flags (its heap limit included) and entry point. */
const WORKER_ARGS = (() => {
  const { scripts } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [node, ...args] = scripts.worker!.split(/\s+/);
  if (node !== 'node') throw new Error(`package.json "worker" no longer starts with node: ${scripts.worker}`);
  return args;
})();

/**
 * Starts a worker as `npm run worker` does (scripts/start.mjs builds the app and runs it in the same
 * process) as a process of its own, sharing a test context's database schema, queue prefix and SMTP
 * sink through `env`, and resolves once it takes jobs. One process, so a signal sent to `pid`
 * reaches the process doing the work, SIGKILL included.
 */
export async function startWorkerProcess(env: Record<string, string>, readyTimeoutMs = 30_000): Promise<WorkerProcess> {
  const child = spawn(process.execPath, WORKER_ARGS, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let out = '';
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready in ${readyTimeoutMs} ms:\n${out}`)), readyTimeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(READY_LINE)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code ?? signal}) before it was ready:\n${out}`));
    });
  });
  const worker: WorkerProcess = {
    pid: child.pid!,
    exited,
    output: () => out,
    kill: (signal) => void child.kill(signal),
  };
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return worker;
}

/** Kills every worker process a test started and left running (a failed assertion, a timeout). */
export async function killWorkerProcesses(): Promise<void> {
  const left = [...running];
  await Promise.all(
    left.map((child) => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    })),
  );
}
