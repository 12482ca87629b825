import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of the nearest package.json at or above `dir`. */
function packageRoot(dir: string): string {
  for (let at = dir; ; at = path.dirname(at)) {
    if (fs.existsSync(path.join(at, 'package.json'))) return at;
    if (path.dirname(at) === at) throw new Error(`no package.json at or above ${dir}`);
  }
}

/**
 * The project's root, where templates/, public/ and src/db/migrations are. Found from where this
 * code runs: src/ through tsx (tests, the cli), dist/ once `npm start` has built it.
 */
export const ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));
