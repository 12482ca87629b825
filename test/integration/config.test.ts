import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTsx, type Ran } from '../helpers/spawn.ts';

/**
 * Each bad value, the mode it starts, and the variable the one line must name. Every variable's
 * rules are in test/unit/config.test.ts; these show that a real start stops on them.
 */
const BAD: { env: Record<string, string>; mode?: string; names: string }[] = [
  { env: { PORT: 'abc' }, names: 'PORT' },
  { env: { SMTP_URL: 'nonsense' }, mode: 'worker', names: 'SMTP_URL' },
  // Valid values, but web alone cannot share the embedded database.
  { env: {}, mode: 'web', names: 'DATABASE_URL' },
];

describe('starting with a bad configuration', () => {
  let dataDir: string;
  let results: Ran[];

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-config-'));
    results = await Promise.all(
      BAD.map((b, i) => runTsx('src/main.ts', b.mode ? [b.mode] : [], { DATA_DIR: path.join(dataDir, String(i)), LOG_LEVEL: 'silent', ...b.env }, { timeoutMs: 60_000 })),
    );
  }, 90_000);
  afterAll(() => {
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it.each(BAD.map((b, i) => [Object.entries(b.env).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || '(none)', b.mode ?? 'all', b.names, i] as const))(
    '%s in mode %s exits non-zero with one line naming %s',
    (_env, _mode, name, i) => {
      const { code, stdout, stderr } = results[i]!;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const lines = stderr.trimEnd().split('\n');
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^appeal: ${name}: \\S`));
      expect(stdout).toBe('');
    },
  );
});
