import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSecret } from '../../src/boot.ts';

describe('the secret kept in DATA_DIR', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appeal-secret-'));
    dirs.push(dir);
    return path.join(dir, 'data');
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('is made once, readable by its owner alone, and the same on every start', () => {
    const dir = dataDir();
    const first = loadSecret({ dataDir: dir, sessionSecret: undefined });
    expect(first.length).toBeGreaterThanOrEqual(43);
    expect(loadSecret({ dataDir: dir, sessionSecret: undefined })).toBe(first);
    expect(fs.statSync(path.join(dir, 'secret')).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['secret']);
  });

  it('is never an empty or cut-short file: that stops the start naming DATA_DIR', () => {
    const dir = dataDir();
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'secret'), '\n');
    expect(() => loadSecret({ dataDir: dir, sessionSecret: undefined })).toThrow(/^DATA_DIR: .* holds no usable secret/);
  });

  it('is SESSION_SECRET when that is set, and nothing is written', () => {
    const dir = dataDir();
    expect(loadSecret({ dataDir: dir, sessionSecret: 'a-long-enough-secret-value' })).toBe('a-long-enough-secret-value');
    expect(fs.existsSync(dir)).toBe(false);
  });
});
