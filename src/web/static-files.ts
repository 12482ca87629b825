import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { ROOT } from '../paths.ts';

export const PUBLIC_DIR = path.join(ROOT, 'public');

/** A file's version: the start of its content's hash, read once per process. */
const versions = new Map<string, string>();
function versionOf(name: string): string | undefined {
  if (!versions.has(name)) {
    const file = path.join(PUBLIC_DIR, name);
    const version = file.startsWith(PUBLIC_DIR + path.sep) && fs.existsSync(file) ? crypto.createHash('sha256').update(fs.readFileSync(file)).digest('base64url').slice(0, 10) : '';
    versions.set(name, version);
  }
  return versions.get(name) || undefined;
}

/**
 * Where a page links a file of public/: `/static/app.js?v=<hash of its content>`, so a page of a
 * new release never runs with the script or stylesheet of the one before from a cache.
 */
export function staticUrl(name: string): string {
  const version = versionOf(name);
  return `/static/${name}${version ? `?v=${version}` : ''}`;
}

/**
 * public/ under /static. Asked for by its current version (staticUrl), a file is the same for
 * good and may be kept a year; otherwise for an hour, as an address without a version can change
 * with the next release.
 */
export function staticFiles(): express.RequestHandler {
  return express.static(PUBLIC_DIR, {
    maxAge: '1h',
    index: false,
    setHeaders(res, file) {
      const asked = (res.req as express.Request).query.v;
      if (typeof asked === 'string' && asked === versionOf(path.relative(PUBLIC_DIR, file))) {
        res.set('Cache-Control', 'public, max-age=31536000, immutable');
      }
    },
  });
}
