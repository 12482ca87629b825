// 1. Signature intake: POST /c/:slug/sign on the real app (validation, rate-limit checks,
// signature and confirmation delivery in one transaction, job enqueued) against a trivial Express
// route parsing the same body. Both servers run in their own process; autocannon runs here.
import autocannon from 'autocannon';
import { createBenchEnv } from './lib/bench-env.ts';
import { startChild, type Child } from './lib/child.ts';
import { createBenchCampaign } from './lib/fixtures.ts';
import type { MeasurementResult, Sizes } from './lib/result.ts';
import { alternate, summarize } from './lib/stats.ts';

// autocannon puts a fresh 33-character id in place of [<id>] in every request, so each signature
// has its own address: no per-email 429s, no already-signed shortcuts.
const BODY =
  'full_name=Dana+Bench&email=s-[<id>]%40bench.example&city=Lyon&country=France' +
  '&personal_note=Please+let+her+stay.&subscribe=on&website=';

interface Load {
  rps: number;
  p99: number;
  byStatus: Record<string, number>;
  errors: number;
}

async function load(port: number, slug: string, seconds: number, connections: number): Promise<Load> {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}/c/${slug}/sign`,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: BODY,
    idReplacement: true,
    connections,
    duration: seconds,
  });
  const byStatus = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count ?? 0]));
  const ok = r['2xx'] + r['3xx'];
  return { rps: ok / r.duration, p99: r.latency.p99, byStatus, errors: r.errors };
}

/** The per-IP allowance a round's requests, all from one address, never use up (10 minutes' worth). */
const PER_IP_ALLOWANCE = 1_000_000_000;

const addCounts = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};

export async function benchIntake(sizes: Sizes): Promise<MeasurementResult> {
  const started = performance.now();
  const { seconds, connections } = sizes.intake;
  const env = await createBenchEnv();
  const children: Child[] = [];
  const product: Load[] = [];
  const trivial: Load[] = [];
  const productStatus: Record<string, number> = {};
  const trivialStatus: Record<string, number> = {};
  const notes: string[] = [];
  try {
    const campaign = await createBenchCampaign(env.db, { requireConfirmation: true });
    // Raised past what a round sends, not turned off: every request still takes its per-IP point.
    const webEnv = { ...env.env, RATE_LIMIT_PER_IP: String(PER_IP_ALLOWANCE) };
    const [app, plain] = await Promise.all([
      startChild('web-process.ts', { ...webEnv, BENCH_WEB: 'app' }),
      startChild('web-process.ts', { ...webEnv, BENCH_WEB: 'trivial' }),
    ]);
    children.push(app, plain);
    const appPort = Number(app.info.port);
    const plainPort = Number(plain.info.port);
    // Unrecorded warm-up: JIT, connection pools, prepared plans.
    const warm = Math.min(2, Math.max(0.5, seconds / 5));
    await load(appPort, campaign.slug, warm, connections).then((l) => addCounts(productStatus, l.byStatus));
    await load(plainPort, campaign.slug, warm, connections);
    await alternate(
      sizes.rounds,
      async () => {
        const l = await app.profile(() => load(appPort, campaign.slug, seconds, connections));
        product.push(l);
        addCounts(productStatus, l.byStatus);
      },
      async () => {
        const l = await plain.profile(() => load(plainPort, campaign.slug, seconds, connections));
        trivial.push(l);
        addCounts(trivialStatus, l.byStatus);
      },
    );
    const { rows } = await env.db.query<{ signatures: number; confirms: number }>(
      `SELECT (SELECT count(*)::int FROM signatures) AS signatures,
              (SELECT count(*)::int FROM deliveries WHERE kind = 'confirm') AS confirms`,
    );
    // The app answers once the rows commit and adds the jobs right after: give the last ones a moment.
    const countJobs = () => env.queues.send.getJobCountByTypes('wait', 'prioritized', 'delayed');
    let jobs = await countJobs();
    for (let waited = 0; jobs < rows[0]!.signatures && waited < 5_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      jobs = await countJobs();
    }
    const redirects = productStatus['303'] ?? 0;
    const { signatures, confirms } = rows[0]!;
    // autocannon stops at its deadline with up to one request per connection still in the
    // server's hands: those commit without being counted, so rows may exceed redirects by that much.
    const inFlightMax = connections * (sizes.rounds + 1);
    notes.push(
      `Stored: ${signatures.toLocaleString('en-US')} pending signatures, ${confirms.toLocaleString('en-US')} confirm deliveries, ` +
        `${jobs.toLocaleString('en-US')} send jobs waiting, for ${redirects.toLocaleString('en-US')} redirects counted (warm-up included).`,
    );
    if (confirms !== signatures || jobs !== signatures || signatures < redirects || signatures - redirects > inFlightMax) {
      notes.push('MISMATCH between responses, stored rows and jobs: look into it.');
    }
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await env.close();
  }
  const statusLine = (s: Record<string, number>) =>
    Object.entries(s).map(([code, n]) => `${code}: ${n.toLocaleString('en-US')}`).join(', ') || 'none';
  const errors = (ls: Load[]) => ls.reduce((s, l) => s + l.errors, 0);
  notes.push(`Responses, app: ${statusLine(productStatus)}; socket errors ${errors(product)}.`);
  notes.push(`Responses, trivial route: ${statusLine(trivialStatus)}; socket errors ${errors(trivial)}.`);
  const unexpected = Object.entries(productStatus).filter(([code]) => !/^[23]/.test(code) && code !== '429');
  if (unexpected.length || errors(product)) notes.push('The app answered something other than 2xx/3xx: see above.');
  return {
    id: 'intake',
    title: '1. Signature intake',
    setup:
      `autocannon, ${connections} connections, ${seconds} s per round, POST /c/:slug/sign with a unique email per request ` +
      `(RATE_LIMIT_PER_IP=${PER_IP_ALLOWANCE.toLocaleString('en-US')}: the per-IP check runs on every request and refuses none; the per-email limit stays on). Product: the web app on Postgres and Redis, campaign with confirmation on ` +
      '(pending signature + confirm delivery in one statement; answers 303 once they commit, and adds the send job right after). Baseline: Express with the same ' +
      'urlencoded parser answering 201. Each server in its own process; requests/s counts 2xx and 3xx answers.',
    series: [
      { label: 'app: requests/s', unit: 'req/s', values: product.map((l) => l.rps) },
      { label: 'trivial route: requests/s', unit: 'req/s', values: trivial.map((l) => l.rps) },
      { label: 'app: p99 latency', unit: 'ms', values: product.map((l) => l.p99) },
      { label: 'trivial route: p99 latency', unit: 'ms', values: trivial.map((l) => l.p99) },
    ],
    targets: [
      {
        name: 'app / trivial route',
        value: summarize(product.map((l) => l.rps)).median / summarize(trivial.map((l) => l.rps)).median,
        kind: 'atLeast',
        target: 0.4,
        format: 'percent',
      },
    ],
    notes,
    seconds: (performance.now() - started) / 1000,
  };
}
