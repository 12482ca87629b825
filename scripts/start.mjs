// `npm start`, `npm run web` and `npm run worker`: builds src/main.ts and what it imports into
// one JavaScript file, dist/main.js, then runs it in this process (the mode, `web` or `worker`,
// is its argument as for src/main.ts). Loading TypeScript file by file through tsx took a second
// or more of every start; esbuild (which tsx itself runs on) builds the whole app in a fraction of
// that, from the source as it is now, so an edit is never left out. Packages stay in
// node_modules; only the project's own code goes into the file.
//
// `node scripts/start.mjs --build` builds and exits (the Docker image builds once, at its build).
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, stop } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'dist', 'main.js');

/**
 * Builds dist/main.js and its source map. Written under names of this process's own, then renamed
 * into place, so that processes starting at the same moment from one checkout never load a file
 * another is still writing.
 */
async function buildMain() {
  const temp = `${OUT}.${process.pid}`;
  const { outputFiles } = await build({
    entryPoints: [path.join(ROOT, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.19',
    packages: 'external',
    sourcemap: 'linked',
    outfile: OUT,
    write: false,
    logLevel: 'silent',
  });
  await fs.mkdir(path.dirname(OUT), { recursive: true });
  // The map first: a process that loads the new code finds the map that goes with it.
  for (const file of [...outputFiles].sort((a) => (a.path.endsWith('.map') ? -1 : 1))) {
    await fs.writeFile(`${temp}${path.extname(file.path)}`, file.contents);
    await fs.rename(`${temp}${path.extname(file.path)}`, file.path);
  }
}

try {
  await buildMain();
} catch (err) {
  const why = err.errors?.length ? err.errors.map((e) => `${e.location?.file ?? ''}:${e.location?.line ?? ''} ${e.text}`).join('\n') : err.message;
  process.stderr.write(`appeal: could not build ${path.relative(ROOT, OUT)} from src/:\n${why}\n`);
  process.exit(1);
} finally {
  // esbuild's service is a child process: it must not outlive the build or keep this one alive.
  stop();
}

if (process.argv[2] === '--build') process.exit(0);
// Stack traces in logs name src/ files and lines, not the built file's.
process.setSourceMapsEnabled(true);
await import(pathToFileURL(OUT).href);
