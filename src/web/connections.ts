import http from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from 'express';

/**
 * Requests one connection may carry. Past it Node answers 503 and closes the connection without
 * handing the request to the app (`maxRequestsPerSocket`): a browser opens another, and a client
 * that pipelined a flood of requests gets the rest refused while they cost almost nothing (nginx
 * kept 100 as its default for years).
 */
export const REQUESTS_PER_CONNECTION = 100;

/**
 * How long an idle connection is kept open for its next request: longer than a reverse proxy or
 * load balancer keeps its own idle connections to the app (60 s at AWS's, nginx's `keepalive_timeout`
 * and most others at or under it). Node's 5 s closed connections a proxy still held, and a request
 * the proxy sent on one as it closed (a signature, which a proxy does not send again) got a 502.
 */
export const IDLE_CONNECTION_MS = 65_000;

/**
 * The web process's HTTP server for `app`, its connections limited as above. Once it is closing
 * (`server.close()`, at shutdown), each answer still to go out says `Connection: close` and ends
 * its connection: Node would keep a connection busy at that moment open, taking requests, until
 * the shutdown's wait ran out and cut it off with one a proxy had just sent on it.
 */
export function createWebServer(app: http.RequestListener): http.Server {
  const server = http.createServer();
  server.maxRequestsPerSocket = REQUESTS_PER_CONNECTION;
  server.keepAliveTimeout = IDLE_CONNECTION_MS;
  // Node's advice: above keepAliveTimeout, so a request that begins just as the wait ends is read whole.
  server.headersTimeout = IDLE_CONNECTION_MS + 1_000;
  const answering = new Set<http.ServerResponse>();
  // Before the app, so an answer it sends at once already knows.
  server.on('request', (_req, res) => {
    if (!server.listening) res.shouldKeepAlive = false;
    answering.add(res);
    res.once('close', () => answering.delete(res));
  });
  server.on('request', app);
  const close = server.close.bind(server);
  server.close = ((done?: (err?: Error) => void) => {
    for (const res of answering) if (!res.headersSent) res.shouldKeepAlive = false;
    return close(done);
  }) as typeof server.close;
  return server;
}

/**
 * One request of a connection at a time. HTTP/1.1 lets a client send requests back to back on one
 * connection without waiting for the answers (pipelining), and Node hands each to the app as it
 * reads it: one connection carrying thousands ran them all at once, each holding memory and
 * waiting for a database connection, until visitors on other connections were answered 503. Their
 * answers go out in order anyway; now they are also worked on in order. Browsers do not pipeline.
 */
export function oneRequestAtATime(): RequestHandler {
  const last = new WeakMap<Socket, Promise<void>>();
  return (req, res, next) => {
    const before = last.get(req.socket);
    const done = new Promise<void>((resolve) =>
      res.once('close', () => {
        if (last.get(req.socket) === done) last.delete(req.socket);
        resolve();
      }),
    );
    last.set(req.socket, done);
    if (before) void before.then(() => next());
    else next();
  };
}
