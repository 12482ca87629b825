/** Header text on one line: control characters (CR and LF among them) become a space. */
export function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/**
 * A display name for From, To or Reply-To. Beyond `oneLine`, `<`, `>` and `@` go: a supporter
 * named `Ann <minister@gov.example>` would otherwise show an address that is not the sender's in
 * a mail client that prints the name alone. No real name needs them.
 */
export function displayName(s: string): string {
  return oneLine(s.replace(/[<>@]+/g, ' ')).replace(/\s{2,}/g, ' ');
}
