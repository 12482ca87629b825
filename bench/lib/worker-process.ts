// Child process: one side of a delivery or worker-overhead bench, chosen by BENCH_ROLE.
//   send            Appeal's send worker (workers/send.ts) on the booted app, SMTP from SMTP_URL;
//                   BENCH_MAILER=noop swaps in a mailer that resolves at once.
//   raw-bullmq      a bare BullMQ Worker on the same queue whose processor does nothing.
//   raw-nodemailer  a bare pooled nodemailer transport sending letters of the same shape.
// The parent calls `start`, then polls `count` until the work is done.
import { Worker, type ConnectionOptions } from 'bullmq';
import nodemailer, { type Transporter } from 'nodemailer';
import { pino } from 'pino';
import { boot } from '../../src/boot.ts';
import { loadConfig } from '../../src/config.ts';
import type { Mailer } from '../../src/mail/transport.ts';
import { QUEUES } from '../../src/queues.ts';
import { connectRedis } from '../../src/redis.ts';
import { createComposers } from '../../workers/index.ts';
import { createSendWorker } from '../../workers/send.ts';
import { serveParent } from './child.ts';

const role = process.env.BENCH_ROLE;
const config = loadConfig(process.env);
const pool = Number(process.env.BENCH_SMTP_POOL ?? 5);
let done = 0;
let failed = 0;
const count = () => ({ done, failed });

const noopMailer: Mailer = { kind: 'smtp', send: async () => ({ messageId: '<noop@bench.example>' }), close() {} };

function countJobs(worker: Worker) {
  worker.on('completed', () => void (done += 1));
  worker.on('failed', () => void (failed += 1));
  worker.on('error', (err) => process.stderr.write(`bench worker: ${err.message}\n`));
}

if (role === 'send') {
  const booted = await boot(config, { allowEmbedded: false, log: pino({ level: 'warn' }), maxConnections: pool });
  const ctx = process.env.BENCH_MAILER === 'noop' ? { ...booted, mailer: noopMailer } : booted;
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
} else if (role === 'raw-bullmq') {
  const redis = await connectRedis(config);
  let worker: Worker | undefined;
  serveParent(
    {
      start() {
        worker = new Worker(QUEUES.send, async () => {}, {
          connection: redis.options as ConnectionOptions,
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
} else if (role === 'raw-nodemailer') {
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
} else {
  throw new Error(`BENCH_ROLE must be send, raw-bullmq or raw-nodemailer, not ${role}`);
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
