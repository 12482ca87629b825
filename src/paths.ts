import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root, where templates/, public/ and src/db/migrations are: the folder above this
 * code's, which is src/ when it runs through tsx (tests, the cli) and dist/ once `npm start` has
 * built it into dist/main.js.
 */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The newest of the folders import-embedded left in DATA_DIR: pglite.imported, then -2, -3 and on. */
export function lastImported(dataDir: string): string | undefined {
  const numbers = fs.existsSync(dataDir)
    ? fs.readdirSync(dataDir).flatMap((name) => {
        const m = /^pglite\.imported(?:-(\d+))?$/.exec(name);
        return m ? [Number(m[1] ?? 1)] : [];
      })
    : [];
  if (numbers.length === 0) return undefined;
  const last = Math.max(...numbers);
  return path.resolve(dataDir, last === 1 ? 'pglite.imported' : `pglite.imported-${last}`);
}

/**
 * What a process without DATABASE_URL says beside a folder import-embedded left (lastImported): the
 * data went to PostgreSQL, and the embedded database here is another, without it.
 */
export const importedWarning = (imported: string) =>
  `DATABASE_URL is not set, and import-embedded moved the embedded database to PostgreSQL (${imported} is what it left): the embedded database used here is another, without that data. Give it the DATABASE_URL the data was imported into`;
