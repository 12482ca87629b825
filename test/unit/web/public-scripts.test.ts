import fs from 'node:fs';
import path from 'node:path';
import { transformSync } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../../src/paths.ts';

/**
 * Supporters open campaign pages on old phones. A script with one piece of newer syntax (a `\p{…}`
 * regular expression literal, `?.`) does not parse there, and none of it runs: the letter's live
 * preview stays empty with the no-script Preview button hidden. esbuild rewrites only what the
 * target lacks, so a script it leaves as it is for Safari 10 (iOS 10) needs nothing newer.
 */
describe('the public scripts', () => {
  for (const name of ['app.js', 'admin.js']) {
    it(`${name} uses no syntax that Safari 10 and Chrome 55 lack`, () => {
      const source = fs.readFileSync(path.join(ROOT, 'public', name), 'utf8');
      const as = (target: string[]) => transformSync(source, { loader: 'js', target }).code;
      expect(as(['safari10', 'chrome55'])).toBe(as(['esnext']));
    });
  }
});
