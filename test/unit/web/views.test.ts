import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadViews } from '../../../src/views.ts';

describe('the templates a process loads', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-views-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (file: string, source: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), source);
  };

  it('are the ones it started with, not those of a release pulled into its checkout before its restart', () => {
    write('layouts/main.hbs', '<main>{{{body}}}</main>');
    write('pages/home.hbs', 'Hello {{name}}');
    write('emails/note.txt.hbs', 'Dear {{name}}');
    write('layouts/email.txt.hbs', '{{{body}}}');
    const views = loadViews(dir);
    // `git pull` while it runs: the next release's templates call a helper this process lacks.
    write('pages/home.hbs', 'Hello {{helperOfTheNextRelease name}}');
    write('emails/note.txt.hbs', 'Dear {{helperOfTheNextRelease name}}');
    write('layouts/main.hbs', '<main class="{{helperOfTheNextRelease}}">{{{body}}}</main>');
    expect(views.page('home', { name: 'Aigerim' })).toBe('<main>Hello Aigerim</main>');
    expect(views.email('note', { name: 'Aigerim' }).text).toContain('Dear Aigerim');
  });
});
