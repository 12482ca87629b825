import { describe, expect, it } from 'vitest';
import { linkify } from '../../../src/views.ts';

describe('linkify', () => {
  it('makes http(s) links clickable and leaves the sentence around them as text', () => {
    expect(linkify('Report: https://news.example/a?b=1&c=2. More at http://court.example/x)')).toBe(
      'Report: <a href="https://news.example/a?b&#x3D;1&amp;c&#x3D;2" rel="nofollow noopener noreferrer">https://news.example/a?b&#x3D;1&amp;c&#x3D;2</a>. ' +
        'More at <a href="http://court.example/x" rel="nofollow noopener noreferrer">http://court.example/x</a>)',
    );
  });

  it('keeps a closing bracket the link opened, and leaves one it did not to the sentence', () => {
    const wiki = 'https://en.wikipedia.org/wiki/Xinjiang_internment_camps_(China)';
    const a = (url: string) => `<a href="${url}" rel="nofollow noopener noreferrer">${url}</a>`;
    expect(linkify(`See ${wiki} for background.`)).toBe(`See ${a(wiki)} for background.`);
    expect(linkify(`(background: ${wiki}).`)).toBe(`(background: ${a(wiki)}).`);
    expect(linkify('[report](https://news.example/r) and https://x.example/a[1]!')).toBe(`[report](${a('https://news.example/r')}) and ${a('https://x.example/a[1]')}!`);
    expect(linkify('just https:// and https://.')).toBe('just https:// and https://.');
    expect(linkify('https://a.example/(x)]).)')).toBe(`${a('https://a.example/(x)')}]).)`);
  });

  it('cuts a long run of closing brackets off a link in one pass, not one count of the link per bracket', () => {
    // Counted again for each bracket cut, 200,000 of them took minutes of a web process's only thread.
    const text = `See https://a.example/${')'.repeat(200_000)}`;
    expect(linkify(text)).toBe(`See <a href="https://a.example/" rel="nofollow noopener noreferrer">https://a.example/</a>${')'.repeat(200_000)}`);
  });

  it('ends a link at punctuation of other scripts, and keeps letters of any script in it', () => {
    const a = (url: string) => `<a href="${url}" rel="nofollow noopener noreferrer">${url}</a>`;
    expect(linkify('报道见https://example.org/news/123。法院将于12月开庭。')).toBe(`报道见${a('https://example.org/news/123')}。法院将于12月开庭。`);
    expect(linkify('（https://example.org/a）、https://example.org/b，')).toBe(`（${a('https://example.org/a')}）、${a('https://example.org/b')}，`);
    expect(linkify('Хабар «https://example.org/kz/45» сайтында.')).toBe(`Хабар «${a('https://example.org/kz/45')}» сайтында.`);
    expect(linkify('خەۋەر: https://example.org/ug/7، ئوقۇڭ')).toBe(`خەۋەر: ${a('https://example.org/ug/7')}، ئوقۇڭ`);
    expect(linkify('(https://example.org/a)。')).toBe(`(${a('https://example.org/a')})。`);
    const wiki = 'https://kk.wikipedia.org/wiki/Қазақстан';
    expect(linkify(`${wiki}.`)).toBe(`${a(wiki)}.`);
    // Dashes, middle dots and apostrophes between letters join words inside an address.
    for (const url of ['https://zh.wikipedia.org/wiki/伊力哈木·土赫提', 'https://ja.wikipedia.org/wiki/ウラジーミル・プーチン', 'https://en.wikipedia.org/wiki/Israel–Hamas_war', 'https://example.org/a’s-story']) {
      expect(linkify(`见 ${url} 。`)).toBe(`见 ${a(url)} 。`);
    }
    expect(linkify('“https://example.org/a—” and https://example.org/b’')).toBe(`“${a('https://example.org/a')}—” and ${a('https://example.org/b')}’`);
    expect(linkify('Read https://example.org/report—it says so.')).toBe(`Read ${a('https://example.org/report')}—it says so.`);
  });

  it('escapes everything else, and makes no link of other schemes or of markup inside a link', () => {
    expect(linkify('<b>x</b> javascript:alert(1) data:text/html,hi')).toBe('&lt;b&gt;x&lt;/b&gt; javascript:alert(1) data:text/html,hi');
    expect(linkify('https://a.example/"><script>')).toBe('<a href="https://a.example/" rel="nofollow noopener noreferrer">https://a.example/</a>&quot;&gt;&lt;script&gt;');
    expect(linkify('no links here')).toBe('no links here');
  });
});
