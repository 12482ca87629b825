// `npm install` runs this (package.json postinstall): makes the PGlite templates a new DATA_DIR
// starts from (src/db/template.ts). Without them the app still works, only its first start runs
// initdb and every migration, so a failure here is reported and the install goes on.
import { prepareSchemaTemplate, prepareTemplate, templateDir } from './db/template.ts';

const template = templateDir();
try {
  if (await prepareTemplate(template)) process.stdout.write(`appeal: PGlite template made in ${template}\n`);
  try {
    if (await prepareSchemaTemplate(template)) process.stdout.write('appeal: PGlite template with the migrations applied made beside it\n');
  } catch (err) {
    process.stderr.write(`appeal: no PGlite template with the migrations applied (${(err as Error).message}); a new DATA_DIR will run them on its first start\n`);
  }
} catch (err) {
  process.stderr.write(`appeal: no PGlite template (${(err as Error).message}); a new DATA_DIR will run initdb on its first start\n`);
}
