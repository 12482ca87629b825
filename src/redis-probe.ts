// Whether a Redis answers at an address, and why not: what connectRedis and spawnRedis both ask
// before they use one, apart from redis.ts so that redis-spawn.ts needs no import back from it.
import net from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';

export const DEFAULT_URL = 'redis://127.0.0.1:6379';

export class RedisUnavailableError extends Error {
  override name = 'RedisUnavailableError';
}

/**
 * Whether a Redis answers at `options`; `refused`: one does, but refuses the login the options
 * carry (NOAUTH, WRONGPASS), which is not a Redis that is missing.
 */
export async function probe(options: RedisOptions): Promise<{ answers: boolean; refused?: string; certificate?: string; handshook?: boolean }> {
  const conn = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  // A refused login is told here; connect() then fails with "Connection is closed."
  const replies: string[] = [];
  const certificates: string[] = [];
  // Over TLS, `connect` comes once the handshake is done.
  let handshook = false;
  conn.on('connect', () => void (handshook = true));
  conn.on('error', (err: Error & { code?: string }) => {
    replies.push(err.message);
    // A TLS server whose certificate this process does not trust (a private CA, a name it is not
    // for); not the server's alert that it wants one of the client (ERR_SSL_…_CERTIFICATE_REQUIRED).
    // Node 24 adds its own advice to the reason ("self-signed certificate; if the root CA is
    // installed locally, try running Node.js with --use-system-ca"): the message gives Appeal's.
    if (!err.code?.startsWith('ERR_SSL_') && /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_(GET|VERIFY)/.test(err.code ?? '')) certificates.push(err.message.split('\n')[0]!.split('; ')[0]!);
  });
  try {
    await conn.connect();
    await conn.ping();
    return { answers: true };
  } catch (err) {
    const refused = [...replies, (err as Error).message].find((reply) => /^(NOAUTH|WRONGPASS)\b/.test(reply ?? ''));
    return { answers: false, refused: refused?.split('\n')[0], certificate: certificates[0], handshook: Boolean(options.tls) && handshook };
  } finally {
    conn.disconnect();
  }
}

export const answers = async (options: RedisOptions) => (await probe(options)).answers;

/** Whether a TCP connection to the host and port of `options` opens within a second. */
export function takesConnections(options: RedisOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host, port: options.port ?? 6379, timeout: 1000 });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
