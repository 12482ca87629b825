import { describe, expect, it } from 'vitest';
import { formatLetterDate, letterHtml } from '../../../src/signatures/emails.ts';

describe('formatLetterDate', () => {
  it('writes the UTC day in British English', () => {
    expect(formatLetterDate(new Date('2026-12-02T23:59:59Z'))).toBe('2 December 2026');
  });

  it('gives each day its own date, however many days have been formatted before', () => {
    const start = Date.UTC(2026, 0, 1);
    for (let i = 0; i < 40; i++) {
      const d = new Date(start + i * 86_400_000 + 3_600_000);
      expect(formatLetterDate(d)).toBe(new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(d));
    }
    expect(formatLetterDate(new Date('2026-01-01T00:00:00Z'))).toBe('1 January 2026');
    expect(formatLetterDate(new Date('2025-12-31T23:59:59.999Z'))).toBe('31 December 2025');
  });
});

describe('letterHtml', () => {
  it('lets each line take the direction of its own text, so a note in Arabic reads right to left and the Kazakh line after it left to right', () => {
    const html = letterHtml('Dear judge,\n\nأرجو منكم عدم ترحيله <b>\nСәлем, Қазақстан!\n\nDana');
    expect(html).toContain('<div dir="auto">أرجو منكم عدم ترحيله &lt;b&gt;</div>\n<div dir="auto">Сәлем, Қазақстан!</div>');
    expect(html.match(/<div dir="auto">/g)).toHaveLength(4);
    expect(html.match(/<div style="margin: 0 0 1em">/g)).toHaveLength(3);
  });

  it('breaks a line, and a paragraph, where a note has Unicode\'s line or paragraph separator, as a reader does', () => {
    const html = letterHtml('Dear judge,\u2028please.\u2029Dana');
    expect(html).toContain('<div style="margin: 0 0 1em"><div dir="auto">Dear judge,</div>\n<div dir="auto">please.</div></div>\n<div style="margin: 0 0 1em"><div dir="auto">Dana</div></div>');
  });

  it('keeps a line\'s indent and its runs of spaces, which HTML would fold into one', () => {
    const html = letterHtml('Please:\n    1. release her\n\tTabbed   spaced\nplain text');
    expect(html).toContain('<div dir="auto">\u00a0\u00a0\u00a0\u00a01. release her</div>');
    expect(html).toContain('<div dir="auto">\u00a0\u00a0\u00a0\u00a0Tabbed\u00a0\u00a0 spaced</div>');
    expect(html).toContain('<div dir="auto">plain text</div>');
  });

  it('wraps a word longer than a phone\'s screen (a pasted link, a name with no spaces), as our other emails do', () => {
    expect(letterHtml('x')).toMatch(/<body style="[^"]*overflow-wrap: anywhere; word-wrap: break-word"/);
  });
});

describe('a name that ends a sentence', () => {
  it('gets no second full stop when it ends with its own (a person named by initials)', async () => {
    const { loadViews } = await import('../../../src/views.ts');
    const { consentWording } = await import('../../../src/subscribers/types.ts');
    const views = loadViews();
    const confirm = (personName: string) =>
      views.email('confirm', { orgName: 'Appeal', campaignTitle: 'Free Aigul', personName, confirmUrl: 'https://x.example/confirm/t', campaignUrl: 'https://x.example/c/a', keptFor: '7 days' });
    const initials = confirm('Aigul T.');
    expect(initials.text).toContain('for Aigul T.\n');
    expect(initials.text).not.toContain('T..');
    expect(initials.html).toContain('for Aigul T. Your letter');
    expect(confirm('Aigul Tursyn').text).toContain('for Aigul Tursyn.\n');
    expect(confirm('Free them!').html).toContain('for Free them! Your letter');
    expect(consentWording('Aigul T.')).toBe('Email me updates about Aigul T. I confirm by email first, and I can leave at any time with one click.');
    expect(consentWording('Aigul')).toBe('Email me updates about Aigul. I confirm by email first, and I can leave at any time with one click.');
  });
});
