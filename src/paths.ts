import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's root, where templates/, public/ and src/db/migrations are: the folder above this
 * code's, which is src/ when it runs through tsx (tests, the cli) and dist/ once `npm start` has
 * built it into dist/main.js.
 */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
