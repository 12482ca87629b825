import express from 'express';
import helmet from 'helmet';
import type { AppContext } from '../context.ts';
import { trustProxy, trustsNoProxy } from '../config.ts';
import { errorHandler, sendError } from './middleware/errors.ts';
import { publicCors } from './middleware/cors.ts';
import { refuseUnreadBody } from './middleware/unread-body.ts';
import { utf8CharsetAliases, utf8Form } from './middleware/utf8.ts';
import { jsonObject } from './middleware/json-object.ts';
import { createLimits } from './middleware/limits.ts';
import { adminRoutes } from './routes/admin/index.ts';
import { apiRoutes } from './routes/api.ts';
import { healthRoutes } from './routes/health.ts';
import { publicRoutes } from './routes/public.ts';
import { oneClickUnsubscribe, subscriberRoutes } from './routes/subscribers.ts';
import { CASES_TO_FOLLOW } from '../subscribers/service.ts';
import { staticFiles, staticUrl } from './static-files.ts';
import { emailedToken } from './forms.ts';
import { oneRequestAtATime } from './connections.ts';
import { multipartFields } from './middleware/multipart-form.ts';

export { createWebServer } from './connections.ts';

/** Public forms are small; anything bigger is not a signature. */
const BODY_LIMIT = 32 * 1024;

/**
 * Says once that a request came through a proxy TRUST_PROXY does not name: every client behind it
 * then counts as its one address for the per-IP limits. (A client may send the header itself; the
 * warning says what to do if a proxy is in front.)
 */
function untrustedProxyWarning(log: AppContext['log']): express.RequestHandler {
  let told = false;
  return (req, _res, next) => {
    if (!told && req.headers['x-forwarded-for'] !== undefined) {
      told = true;
      log.warn('a request came with X-Forwarded-For, but TRUST_PROXY trusts no proxy (unset, false or 0): if a proxy is in front, every visitor counts as its address and all share one per-IP limit. Set TRUST_PROXY to the number of proxies in front (1) or their addresses (loopback)');
    }
    next();
  };
}

/** A Host header naming a Tor onion service. */
const ONION_HOST = /\.onion(:\d+)?$/i;

/** Features no page uses, denied (names a browser does not know are reported in its console). */
const PERMISSIONS_POLICY = ['camera', 'microphone', 'geolocation', 'payment', 'usb', 'browsing-topics'].map((f) => `${f}=()`).join(', ');

/** A campaign's or case's address: its slug is lowercase, whatever a phone or a person made of the link. */
const SLUGGED = /^\/(c|cases)\/([^/]+)(.*)$/i;

/**
 * A page asked for with capitals where addresses have none (`/c/Protect-Aigerim`, `/ADMIN/...`) is
 * sent to its address: Express's routes ignore case, but the console's cookie path does not (a
 * signed-in organizer would be asked to sign in), and a slug is matched as stored.
 */
const lowercaseAddresses: express.RequestHandler = (req, res, next) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') return next();
  let to: string | undefined;
  const admin = /^\/admin(?=\/|$)/i.exec(req.path);
  if (admin) {
    if (admin[0] !== '/admin') to = `/admin${req.path.slice(admin[0].length)}`;
  } else {
    const slugged = SLUGGED.exec(req.path);
    const [, kind = '', slug = '', rest = ''] = slugged ?? [];
    if (slugged && (kind + slug) !== (kind + slug).toLowerCase()) to = `/${kind.toLowerCase()}/${slug.toLowerCase()}${rest}`;
  }
  if (to === undefined) return next();
  const query = req.originalUrl.indexOf('?');
  res.redirect(301, to + (query >= 0 ? req.originalUrl.slice(query) : ''));
};

/** The Express app: pages, form posts, JSON API. No listening here; see src/main.ts. */
export function createWebApp(ctx: AppContext): express.Express {
  const app = express();
  app.use(oneRequestAtATime());
  app.set('trust proxy', trustProxy(ctx.config.trustProxy));
  // Where this site's pages are served from as the browser sees them: a proxy may pass on a Host
  // of its own (nginx's default), and an Origin naming PUBLIC_URL is this site's all the same.
  app.set('public host', new URL(ctx.config.publicUrl).host);
  app.disable('x-powered-by');
  // Express's own last-resort error page shows a stack trace unless this says production, and
  // `npm start` sets no NODE_ENV (errorHandler answers every error; this is for one that escapes it).
  app.set('env', 'production');
  if (trustsNoProxy(ctx.config.trustProxy)) app.use(untrustedProxyWarning(ctx.log));
  const headers = (upgradeInsecure: boolean) =>
    helmet({
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          // helmet's default would also take fonts from anywhere on https; nothing here loads any.
          fontSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          upgradeInsecureRequests: upgradeInsecure ? [] : null,
        },
      },
      // Other sites get no Referer (a token page's address stays here). Not no-referrer: under it a
      // browser sends the site's own form posts with `Origin: null`, as another site's would come,
      // and one without Fetch Metadata (Safari before 16.4) has only Origin to tell them apart by.
      referrerPolicy: { policy: 'same-origin' },
      // As frame-ancestors 'none' says, for browsers that read only this header.
      frameguard: { action: 'deny' },
    });
  // Forms and assets are fetched over https only behind https: on a plain-http install it would send
  // them to a port nobody serves, and so on an onion address in front of an https one (Tor's own
  // encryption, no certificate), which Tor Browser counts as secure as it is.
  const secured = headers(ctx.config.publicUrl.startsWith('https:'));
  const plain = headers(false);
  app.use((req, res, next) => (ONION_HOST.test(req.get('host') ?? '') ? plain : secured)(req, res, next));
  // No page uses a camera, a microphone, a location or the like, nor lets an ad script ask the
  // browser what its reader is interested in.
  app.use((_req, res, next) => {
    res.set('Permissions-Policy', PERMISSIONS_POLICY);
    res.locals.orgName = ctx.config.orgName;
    next();
  });
  // A page whose address holds a token is one person's: no shared cache keeps it, no search
  // engine lists it (a forwarded email's link can end up anywhere).
  app.use(['/confirm', '/subscribe/confirm', '/preferences', '/unsubscribe'], (_req, res, next) => {
    res.set({ 'Cache-Control': 'no-store, private', 'X-Robots-Tag': 'noindex, nofollow' });
    next();
  });
  app.use('/static', staticFiles());
  // Asked for by browsers on answers that are not pages (/healthz, a JSON error), and by bookmark
  // and link-preview services: the site's icon, where pages name it.
  app.get('/favicon.ico', (_req, res) => res.redirect(302, staticUrl('favicon.svg')));
  // What a public form sends back (a sign form with a mistake, the no-script preview, a subscribe
  // form with a mistake) shows what was typed: a name, an address, a note. No cache keeps it, the
  // browser's own on disk included, as none keeps the confirmation page that shows the same.
  // Any other page changes when an organizer acts (a campaign closed, a case's details taken
  // down): a shared cache (a CDN) asks each time whether it did, by its ETag, rather than keep
  // serving the old one for a time of its own choosing.
  app.use((req, res, next) => {
    if (!res.get('Cache-Control')) res.set('Cache-Control', req.method === 'POST' ? 'no-store' : 'no-cache');
    next();
  });
  app.use(lowercaseAddresses);
  // Before the public body parsers: the console parses its own bodies, with larger limits.
  app.use('/admin', adminRoutes(ctx));
  // Before the body parsers, so an embedding page can read a 400 or 413 from them too. Matched
  // without a parameter: a slug whose escapes cannot be decoded (a 400) gets the headers too.
  app.use([/^\/api\/v1\/campaigns\/[^/]+\/signatures\/?$/i, '/api/v1/subscribers'], publicCors);
  app.param('token', emailedToken);
  app.post('/unsubscribe/:token', oneClickUnsubscribe(ctx));
  const limits = createLimits(ctx);
  app.use(healthRoutes(ctx));
  // The API reads JSON alone, each route with its own limit (src/web/routes/api.ts).
  app.use('/api/v1', apiRoutes(ctx, limits));
  app.use(utf8CharsetAliases);
  // The preferences form names each case ticked, and lists up to CASES_TO_FOLLOW of them.
  app.post('/preferences/:token', express.urlencoded({ extended: false, limit: '64kb', parameterLimit: CASES_TO_FOLLOW + 10, verify: utf8Form }), multipartFields(64 * 1024, CASES_TO_FOLLOW + 10));
  app.use(express.urlencoded({ extended: false, limit: BODY_LIMIT, parameterLimit: 50, verify: utf8Form }));
  app.use(multipartFields(BODY_LIMIT, 50));
  app.use(jsonObject({ limit: BODY_LIMIT }));
  app.use(refuseUnreadBody('Send the form as application/x-www-form-urlencoded (a plain HTML form), multipart/form-data without files, or JSON.'));

  app.use(publicRoutes(ctx, limits));
  app.use(subscriberRoutes(ctx, limits));

  app.use((req, res) => sendError(res, req, ctx.views, { status: 404, code: 'not_found', title: 'Not found', message: 'There is no page at this address.' }));
  app.use(errorHandler(ctx.views, ctx.log));
  return app;
}
