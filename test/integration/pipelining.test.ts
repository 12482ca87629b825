import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUESTS_PER_CONNECTION } from '../../src/web/connections.ts';
import { createTestContext, type TestContext } from '../helpers/context.ts';
import { createLiveCampaign } from '../helpers/fixtures.ts';

/** Writes `requests` back to back on one connection and reads until the server closes it. */
function pipeline(url: string, requests: string[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(requests.join('')));
    let answer = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk)).once('close', () => resolve(answer)).once('error', reject);
  });
}

describe('a client that pipelines requests on one connection (Postgres)', () => {
  let ctx: TestContext;
  let base: string;
  let inFlight = 0;
  let most = 0;
  beforeAll(async () => {
    ctx = await createTestContext({ db: 'postgres' });
    // Statements the app has at the database at once, counted as they start and end.
    const query = ctx.db.query.bind(ctx.db);
    (ctx.db as { query: typeof query }).query = (async (...args: Parameters<typeof query>) => {
      most = Math.max(most, ++inFlight);
      try {
        return await query(...args);
      } finally {
        inFlight -= 1;
      }
    }) as typeof query;
    base = await ctx.startWeb();
  }, 60_000);
  afterAll(async () => {
    await ctx?.close();
  });

  it('works on them one at a time, and refuses those past the connection\'s allowance without working on them', async () => {
    const { slug } = await createLiveCampaign(ctx.db);
    most = 0;
    const count = REQUESTS_PER_CONNECTION + 50;
    const answer = await pipeline(base, Array.from({ length: count }, () => `GET /c/${slug} HTTP/1.1\r\nHost: x\r\n\r\n`));
    const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
    expect(statuses.slice(0, REQUESTS_PER_CONNECTION)).toEqual(Array(REQUESTS_PER_CONNECTION).fill(200));
    expect(statuses.slice(REQUESTS_PER_CONNECTION).every((s) => s === 503)).toBe(true);
    // Every one past the allowance is answered, each refused.
    expect(statuses.slice(REQUESTS_PER_CONNECTION)).toEqual(Array(count - REQUESTS_PER_CONNECTION).fill(503));
    // One page's own statements at a time, not a hundred pages' racing for the pool.
    expect(most).toBeLessThanOrEqual(3);
    // A page on a connection of its own is served as ever.
    expect((await fetch(`${base}/c/${slug}`)).status).toBe(200);
  });
});
