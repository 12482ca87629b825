// Child process: one side of a delivery, worker-overhead or fan-out bench, chosen by BENCH_ROLE.
//   send            Appeal's send worker (workers/send.ts) on the booted app, SMTP from SMTP_URL;
//                   BENCH_MAILER=noop swaps in a mailer that resolves at once.
//   raw-bullmq      a bare BullMQ Worker on the same queue whose processor does nothing.
//   raw-nodemailer  a bare pooled nodemailer transport sending letters of the same shape.
//   fanout          Appeal's fan-out worker (workers/fanout.ts); the parent posts the case update.
//   raw-addbulk     bare Queue.addBulk of as many send jobs, in chunks of 1,000.
// The parent calls `start`, then polls `count` until the work is done. Each role imports only
// what it uses, so a baseline does not carry the product's modules (nor their memory).
import type { Queue, Worker } from 'bullmq';
import type { Transporter } from 'nodemailer';
import { loadConfig } from '../../src/config.ts';
import { serveParent } from './child.ts';

const config = loadConfig(process.env);
const pool = Number(process.env.BENCH_SMTP_POOL ?? config.workerConcurrency);
let done = 0;
let failed = 0;
const count = () => ({ done, failed });

function countJobs(worker: Worker) {
  worker.on('completed', () => void (done += 1));
  worker.on('failed', () => void (failed += 1));
  worker.on('error', (err) => process.stderr.write(`bench worker: ${err.message}\n`));
}

async function bootApp() {
  const { boot } = await import('../../src/boot.ts');
  const { pino } = await import('pino');
  return boot(config, { allowEmbedded: false, log: pino({ level: 'warn' }), maxConnections: pool });
}

async function send() {
  const booted = await bootApp();
  const { createSendWorker } = await import('../../workers/send.ts');
  const { createComposers } = await import('../../workers/index.ts');
  const ctx = process.env.BENCH_MAILER === 'noop'
    ? { ...booted, mailer: { kind: 'smtp' as const, send: async () => ({ messageId: '<noop@bench.example>' }), verify: async () => {}, close() {} } }
    : booted;
  let worker: Worker | undefined;
  serveParent(
    {
      start() {
        worker = createSendWorker(ctx, createComposers(ctx), config.workerConcurrency);
        countJobs(worker);
      },
      count,
    },
    async () => {
      await worker?.close();
      await booted.close();
    },
  );
}

async function fanout() {
  const booted = await bootApp();
  const { createFanoutWorker } = await import('../../workers/fanout.ts');
  let worker: Worker | undefined;
  serveParent(
    {
      async start() {
        worker = createFanoutWorker(booted);
        countJobs(worker);
        await worker.waitUntilReady();
      },
      count,
    },
    async () => {
      await worker?.close();
      await booted.close();
    },
  );
}

async function rawBullmq() {
  const { Worker } = await import('bullmq');
  const { connectRedis } = await import('../../src/redis.ts');
  const redis = await connectRedis(config);
  let worker: Worker | undefined;
  serveParent(
    {
      start() {
        worker = new Worker('send', async () => {}, {
          connection: redis.options as never,
          prefix: config.queuePrefix,
          concurrency: config.workerConcurrency,
        });
        countJobs(worker);
      },
      count,
    },
    async () => {
      await worker?.close();
      await redis.close();
    },
  );
}

async function rawAddBulk() {
  const { Queue } = await import('bullmq');
  const { connectRedis } = await import('../../src/redis.ts');
  const { BULK_PRIORITY, SEND_JOB_OPTIONS } = await import('../../src/queues.ts');
  const redis = await connectRedis(config);
  const queue = new Queue('send', { connection: redis.options as never, prefix: config.queuePrefix });
  queue.on('error', () => {});
  // The same jobs the fan-out adds (ids `d-<n>`, the send options with an update's priority), a chunk of 1,000 at a time.
  const addAll = async (q: Queue, n: number) => {
    for (let i = 1; i <= n; i += 1000) {
      const chunk = [];
      for (let id = i; id < Math.min(i + 1000, n + 1); id++) {
        chunk.push({ name: 'send', data: { deliveryId: id }, opts: { ...SEND_JOB_OPTIONS, jobId: `d-${id}`, priority: BULK_PRIORITY } });
      }
      await q.addBulk(chunk);
    }
  };
  serveParent(
    {
      start({ n }) {
        void addAll(queue, n as number).then(
          () => void (done += 1),
          () => void (failed += 1),
        );
      },
      count,
    },
    async () => {
      await queue.close();
      await redis.close();
    },
  );
}

async function rawNodemailer() {
  const { default: nodemailer } = await import('nodemailer');
  const transport = nodemailer.createTransport({ pool: true, url: config.smtpUrl, maxConnections: pool, maxMessages: Infinity });
  serveParent(
    {
      start({ n }) {
        void sendAll(transport, n as number, config.workerConcurrency);
      },
      count,
    },
    async () => transport.close(),
  );
}

/** What the letter composer would build: the same headers, a text part and its HTML twin. */
function letter(i: number) {
  const text = `Your Honour,

I am writing about Aigerim Bench, an ethnic Kazakh who fled the camps in Xinjiang and is now
detained in Almaty for crossing the border. Sending her back to China would expose her
to torture. I ask you to release her and to grant her protection.

Please let her stay.

Yours sincerely,
Supporter ${i}
Lyon France
${new Date().toUTCString().slice(5, 16)}`;
  const html = `<!doctype html><html><body style="font-family: Georgia, serif; line-height: 1.5; max-width: 40em">\n${text
    .split(/\n{2,}/)
    .map((p) => `<p>${p.replace(/\n/g, '<br>\n')}</p>`)
    .join('\n')}\n</body></html>\n`;
  return {
    from: { name: `Supporter ${i} via ${config.orgName}`, address: config.mailFrom.address },
    to: { name: 'District Court', address: 'court@bench.example' },
    subject: 'About Aigerim Bench',
    text,
    html,
  };
}

/** Keeps `inFlight` messages in the pool's hands, like a worker with that concurrency. */
async function sendAll(transport: Transporter, n: number, inFlight: number) {
  let next = 0;
  const lane = async () => {
    while (next < n) {
      const i = next++;
      try {
        await transport.sendMail(letter(i));
        done += 1;
      } catch {
        failed += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
}

const roles: Record<string, () => Promise<void>> = {
  send,
  fanout,
  'raw-bullmq': rawBullmq,
  'raw-addbulk': rawAddBulk,
  'raw-nodemailer': rawNodemailer,
};
const role = roles[process.env.BENCH_ROLE ?? ''];
if (!role) throw new Error(`BENCH_ROLE must be one of ${Object.keys(roles).join(', ')}, not ${process.env.BENCH_ROLE}`);
await role();
