import { describe, expect, it } from 'vitest';
import { flashText } from '../../../../src/web/middleware/session.ts';

describe('a flash message', () => {
  it('goes whole when its cookie can carry it, a long Cyrillic title included', () => {
    const message = `Update “${'Ж'.repeat(298)}😀” withdrawn: its alerts not yet sent are dropped.`;
    expect(flashText(message)).toBe(message);
    expect(() => encodeURIComponent(flashText(message))).not.toThrow();
  });

  it('is cut between characters, with an ellipsis, when it would not fit, never inside an emoji', () => {
    const text = flashText('😀'.repeat(2_000));
    expect(text.endsWith('😀…')).toBe(true);
    expect(encodeURIComponent(text).length).toBeLessThanOrEqual(3_000 + 9);
    // A half character that came in some other way is shown as a replacement, not thrown on.
    expect(flashText('a\ud800b')).toBe('a\ufffdb');
  });
});
