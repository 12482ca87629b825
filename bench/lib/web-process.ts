// Child process: an HTTP server for the intake bench, chosen by BENCH_WEB.
//   app      Appeal's web app (src/web/app.ts) booted on the bench schema and queue prefix.
//   trivial  Express parsing the same urlencoded body and answering 201.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { pino } from 'pino';
import { boot } from '../../src/boot.ts';
import { loadConfig } from '../../src/config.ts';
import { createWebApp } from '../../src/web/app.ts';
import { serveParent } from './child.ts';

async function listen(app: express.Express): Promise<Server> {
  return new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
}

const stopServer = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

if (process.env.BENCH_WEB === 'app') {
  const ctx = await boot(loadConfig(process.env), { allowEmbedded: false, log: pino({ level: 'warn' }) });
  const server = await listen(createWebApp(ctx));
  serveParent({}, async () => {
    await stopServer(server);
    await ctx.close();
  }, { port: (server.address() as AddressInfo).port });
} else if (process.env.BENCH_WEB === 'trivial') {
  const app = express();
  app.use(express.urlencoded({ extended: false, limit: '32kb', parameterLimit: 50 }));
  app.post('/c/:slug/sign', (req, res) => {
    res.status(req.body?.email ? 201 : 400).end();
  });
  const server = await listen(app);
  serveParent({}, () => stopServer(server), { port: (server.address() as AddressInfo).port });
} else {
  throw new Error(`BENCH_WEB must be app or trivial, not ${process.env.BENCH_WEB}`);
}
