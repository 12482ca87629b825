import { describe, expect, it } from 'vitest';
import { linkify } from '../../../src/views.ts';

describe('linkify', () => {
  it('makes http(s) links clickable and leaves the sentence around them as text', () => {
    expect(linkify('Report: https://news.example/a?b=1&c=2. More at http://court.example/x)')).toBe(
      'Report: <a href="https://news.example/a?b&#x3D;1&amp;c&#x3D;2" rel="nofollow noopener noreferrer">https://news.example/a?b&#x3D;1&amp;c&#x3D;2</a>. ' +
        'More at <a href="http://court.example/x" rel="nofollow noopener noreferrer">http://court.example/x</a>)',
    );
  });

  it('escapes everything else, and makes no link of other schemes or of markup inside a link', () => {
    expect(linkify('<b>x</b> javascript:alert(1) data:text/html,hi')).toBe('&lt;b&gt;x&lt;/b&gt; javascript:alert(1) data:text/html,hi');
    expect(linkify('https://a.example/"><script>')).toBe('<a href="https://a.example/" rel="nofollow noopener noreferrer">https://a.example/</a>&quot;&gt;&lt;script&gt;');
    expect(linkify('no links here')).toBe('no links here');
  });
});
