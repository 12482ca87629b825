import type { RequestHandler, Router } from 'express';
import { MethodNotAllowedError } from '../../errors.ts';

interface RouteLayer {
  route?: { path: string | string[]; methods: Record<string, boolean | undefined> };
}

/**
 * Call once a router's routes are all registered: a path it routes, asked with a method none of
 * its routes take, answers 405 with `Allow` (and OPTIONS 204 with `Allow`) instead of falling
 * through to 404, which would say the address does not exist. `routedElsewhere` names methods a
 * path takes through another router mounted before this one, so that `Allow` lists them too.
 * `routes`: the routers whose routes count, when `router` mounts them (the console's areas) and
 * a path's methods are spread over several; the handlers go on `router`, after them all.
 */
export function answerOtherMethods(router: Router, routedElsewhere: Record<string, string[]> = {}, routes: Router[] = [router]): void {
  const byPath = new Map<string, Set<string>>();
  for (const { route } of routes.flatMap((r) => r.stack as RouteLayer[])) {
    if (!route) continue;
    for (const path of [route.path].flat()) {
      const methods = byPath.get(path) ?? new Set<string>();
      for (const [method, on] of Object.entries(route.methods)) if (on && method !== '_all') methods.add(method.toUpperCase());
      byPath.set(path, methods);
    }
  }
  for (const [path, methods] of Object.entries(routedElsewhere)) {
    for (const method of methods) byPath.get(path)?.add(method);
  }
  for (const [path, methods] of byPath) {
    if (methods.has('GET')) methods.add('HEAD');
    methods.delete('OPTIONS');
    const allowed = [...[...methods].sort(), 'OPTIONS'];
    const handler: RequestHandler = (req, res, next) => {
      if (req.method === 'OPTIONS') {
        res.set('Allow', allowed.join(', ')).status(204).end();
        return;
      }
      next(new MethodNotAllowedError(allowed));
    };
    router.all(path, handler);
  }
}
