import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createWebServer } from '../../../src/web/connections.ts';

describe('the web server at shutdown', () => {
  it('ends a connection that was busy when it began closing, with the answer in progress', async () => {
    let began!: () => void;
    const busy = new Promise<void>((resolve) => (began = resolve));
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const server = createWebServer((req, res) => {
      if (req.url !== '/slow') return void res.end('ok');
      began();
      void answered.then(() => res.end('done'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n'));
    let text = '';
    socket.setEncoding('latin1').on('data', (chunk: string) => (text += chunk));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      await busy;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      answer();
      // Without `Connection: close` the connection would stay open for its next request, and the
      // server would not finish closing until the idle wait (65 s) ran out.
      await ended;
      await closed;
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).toMatch(/\r\nConnection: close\r\n/i);
      expect(text.endsWith('done')).toBe(true);
    } finally {
      socket.destroy();
      server.closeAllConnections();
    }
  }, 10_000);
});
