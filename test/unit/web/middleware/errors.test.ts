import net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { mapError } from '../../../../src/web/middleware/errors.ts';

/** A port nothing listens on: one just closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('what a failed request answers', () => {
  it('is 503 "may not have been saved, send it again" when the database cannot be reached or is restarting', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: await closedPort(), connectionTimeoutMillis: 2_000 });
    const refused = await client.connect().then(() => undefined, (err: unknown) => err);
    expect(mapError(refused)).toMatchObject({ status: 503, code: 'unavailable', message: expect.stringContaining('may not have been saved') });
    expect(mapError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toMatchObject({ status: 503 });
    expect(mapError(Object.assign(new Error('connection failure'), { code: '08006' }))).toMatchObject({ status: 503 });
  });

  it('is left to the 500 page for a statement that is wrong, which is logged', () => {
    expect(mapError(Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' }))).toBeUndefined();
    expect(mapError(new Error('something else'))).toBeUndefined();
  });
});
