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
 * Builds dist/main.js and its source map, and writes them unless they are there as built already.
 * Written under names of this process's own, then renamed into place, so that processes starting
 * at the same moment from one checkout never load a file another is still writing.
 */
async function buildMain() {
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
  const current = await Promise.all(outputFiles.map((file) => fs.readFile(file.path).then((was) => was.equals(file.contents), () => false)));
  if (current.every(Boolean)) return;
  await fs.mkdir(path.dirname(OUT), { recursive: true });
  // The map first: a process that loads the new code finds the map that goes with it.
  const ordered = [...outputFiles].sort((a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')));
  const temps = ordered.map((file) => `${file.path}.${process.pid}`);
  try {
    for (const [i, file] of ordered.entries()) {
      await fs.writeFile(temps[i], file.contents);
      await fs.rename(temps[i], file.path);
    }
  } finally {
    // A write that failed (a full disk) leaves nothing half written behind.
    await Promise.all(temps.map((temp) => fs.rm(temp, { force: true })));
  }
}

try {
  await buildMain();
} catch (err) {
  const where = path.relative(ROOT, OUT);
  const why = err.errors?.length
    ? `could not build ${where} from src/:\n${err.errors.map((e) => `${e.location?.file ?? ''}:${e.location?.line ?? ''} ${e.text}`).join('\n')}`
    : ['EACCES', 'EPERM', 'EROFS'].includes(err.code)
      ? `cannot write ${where} (${err.code}): src/ changed since it was built, or it was never built. Build it as the checkout's owner (node scripts/start.mjs --build), or make ${path.dirname(where)}/ writable for this user`
      : `could not write ${where}: ${err.message}`;
  process.stderr.write(`appeal: ${why}\n`);
  process.exit(1);
} finally {
  // esbuild's service is a child process: it must not outlive the build or keep this one alive.
  stop();
}

if (process.argv[2] === '--build') process.exit(0);
// Stack traces in logs name src/ files and lines, not the built file's.
process.setSourceMapsEnabled(true);
await import(pathToFileURL(OUT).href);
