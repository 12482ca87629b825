import { describe, expect, it } from 'vitest';
import { languageTag } from '../../../src/cases/types.ts';

describe('a case\'s language tag', () => {
  it('takes a BCP 47 tag of a language and writes it as the standard does', () => {
    expect(languageTag.parse('kk')).toBe('kk');
    expect(languageTag.parse(' KK-cyrl ')).toBe('kk-Cyrl');
    expect(languageTag.parse('ug-arab')).toBe('ug-Arab');
    expect(languageTag.parse('zh-hans-cn')).toBe('zh-Hans-CN');
    expect(languageTag.parse('')).toBe('');
  });

  it('refuses what names no language: a country code, an unknown code, another notation', () => {
    // `kz` is Kazakhstan's code, an easy slip for Kazakh's `kk`: lang="kz" would read as no language.
    for (const tag of ['kz', 'xx', 'en_US', 'e', 'Kazakh', 'kk-', 'kk"><script>']) {
      expect(languageTag.safeParse(tag).error?.issues[0]?.message, tag).toContain('language tag such as kk');
    }
  });
});
