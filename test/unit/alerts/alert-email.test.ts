import { describe, expect, it } from 'vitest';
import { alertContent } from '../../../src/alerts/emails.ts';
import { loadViews } from '../../../src/views.ts';

const config = { publicUrl: 'https://appeal.example', orgName: 'Appeal', mailFrom: { name: 'Appeal', address: 'letters@appeal.example' } };

describe('an alert email', () => {
  // An organizer's title goes to every follower: in the HTML part it must be text, never markup.
  it('escapes the update, the case and the person in its HTML part, and keeps them as written in its text part', () => {
    const alert = alertContent(config as never, loadViews(), {
      personName: 'Aigerim <i>N</i>', followsCase: true, location: 'Almaty & "Zharkent"', caseStatus: 'detained', language: '',
      title: 'Court <b>date</b> & "appeal"', body: 'See <img src=x onerror=alert(1)>.', publishedAt: new Date('2026-12-06T10:00:00Z'), caseSlug: 'aigerim',
    }, 'token');
    expect(alert.html).toContain('Court &lt;b&gt;date&lt;/b&gt; &amp; &quot;appeal&quot;');
    expect(alert.html).toContain('Aigerim &lt;i&gt;N&lt;/i&gt;');
    expect(alert.html).toContain('Almaty &amp; &quot;Zharkent&quot;');
    expect(alert.html).toContain('See &lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;.');
    for (const markup of ['<b>', '<i>', '<img']) expect(alert.html).not.toContain(markup);
    expect(alert.text).toContain('Court <b>date</b> & "appeal"');
    expect(alert.subject).toBe('Aigerim <i>N</i>: Court <b>date</b> & "appeal"');
    // Written in English, as the site: no language is named.
    expect(alert.html).not.toContain(' lang=""');
    expect(alert.html!.match(/ lang="/g)).toHaveLength(1);
  });

  it('marks the update\'s title and text with its case\'s language, for a screen reader to read them in it', () => {
    const facts = { personName: 'Айгерім', followsCase: true, location: 'Алматы', caseStatus: 'detained', language: 'kk', caseSlug: 'aigerim' };
    const alert = alertContent(config as never, loadViews(), { ...facts, title: 'Сот отырысы', body: 'Ертең сот.', publishedAt: new Date('2026-12-06T10:00:00Z') }, 'token');
    expect(alert.html).toContain('<h1 dir="auto" lang="kk"');
    expect(alert.html).toMatch(/<div lang="kk">\s*<div style="margin:0 0 1em"><div dir="auto">Ертең сот\.<\/div>/);
  });

  it('says whom the follower follows in one sentence, with one full stop after a name of initials', () => {
    const about = (personName: string, followsCase: boolean) =>
      alertContent(config as never, loadViews(), {
        personName, followsCase, location: '', caseStatus: 'detained', language: '', title: 'News', body: 'Text.', publishedAt: new Date('2026-12-06T10:00:00Z'), caseSlug: 'aigul',
      }, 'token');
    // The name apart from the sentence around it (bdi), as every name in an email is.
    const read = (personName: string, followsCase: boolean, part: 'text' | 'html') => about(personName, followsCase)[part]!.replace(/<\/?bdi>/g, '');
    for (const part of ['text', 'html'] as const) {
      expect(read('Aigul T.', true, part)).toContain('You get this because you follow Aigul T.');
      expect(read('Aigul T.', true, part)).not.toContain('T..');
      expect(read('Aigul Tursyn', true, part)).toContain('You get this because you follow Aigul Tursyn.');
      expect(read('Aigul T.', false, part)).toContain('You get this because you follow all cases.');
    }
    expect(about('ئايگۈل تۇرسۇن', true).html).toContain('Read more about <bdi>ئايگۈل تۇرسۇن</bdi></a>');
    expect(about('ئايگۈل تۇرسۇن', true).html).toContain('because you follow <bdi>ئايگۈل تۇرسۇن</bdi>.');
    expect(about('ئايگۈل تۇرسۇن', true).text).toContain('because you follow \u2068ئايگۈل تۇرسۇن\u2069.');
  });
});
