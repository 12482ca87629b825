import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// The tsx that `npx tsx` and the npm scripts run, without npx's own start-up and warnings.
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `tsx <script> ...args` from the project root with only the given environment (plus PATH
 * and HOME), so nothing from the developer's shell leaks in. Kills it after `timeoutMs`.
 */
/** `stdin`: what to write and then end stdin with; 'open' leaves it open, writing nothing. */
export function runTsx(script: string, args: string[], env: Record<string, string>, opts: { stdin?: string | { open: true }; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [script, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    if (typeof opts.stdin === 'string') child.stdin!.end(opts.stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago, for a process started next. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
