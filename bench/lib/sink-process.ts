// Child process: an SMTP server that accepts every message and only counts it, so the sink
// costs as little CPU as an SMTP server can and both arms of a delivery bench pay the same.
import type { AddressInfo, Server } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { serveParent } from './child.ts';

let accepted = 0;
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  // Pooled clients keep their connections; the default limit would refuse the tenth.
  maxClients: 1000,
  // On exit, clients still holding pooled connections are cut after this.
  closeTimeout: 500,
  onData(stream, _session, cb) {
    stream.on('end', () => {
      accepted += 1;
      cb();
    });
    stream.resume();
  },
});
server.on('error', () => {});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = (server as unknown as { server: Server }).server.address() as AddressInfo;

serveParent(
  { count: () => accepted },
  () => new Promise<void>((resolve) => server.close(() => resolve())),
  { port, url: `smtp://127.0.0.1:${port}` },
);
