// `npm install` runs this (package.json postinstall): makes the PGlite template a new DATA_DIR
// starts from (src/db/template.ts). Without it the app still works, only its first start runs
// initdb, so a failure here is reported and the install goes on.
import { prepareTemplate, templateDir } from './db/template.ts';

try {
  const template = templateDir();
  if (await prepareTemplate(template)) process.stdout.write(`appeal: PGlite template made in ${template}\n`);
} catch (err) {
  process.stderr.write(`appeal: no PGlite template (${(err as Error).message}); a new DATA_DIR will run initdb on its first start\n`);
}
