// Keeping a value written into a sentence in its place, whatever direction each is written in.

/** A letter of a script written right to left. */
const RIGHT_TO_LEFT = /[\p{Script=Arabic}\p{Script=Hebrew}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Yezidi}]/u;

export const hasRightToLeft = (text: string) => RIGHT_TO_LEFT.test(text);

/**
 * Each line of `value` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE (U+2068, U+2069):
 * laid out on its own, in the direction of its first letter, as HTML's `<bdi>` does. Without them
 * the Unicode bidi algorithm joins a right-to-left value to right-to-left words beside it: in
 * "Мен, {{supporter.fullName}}, {{case.personName}} үшін", a Uyghur signer's name and a Uyghur
 * detainee's name read as one run, and a reader of the Kazakh sentence sees the names swap.
 * A line at a time, since an isolate ends with its paragraph. A name, city or country cannot hold
 * these characters (`line` refuses them); a note's own, which editors put around mixed text, nest
 * inside (balanced first: see closedIsolates), and an embedding a note leaves open ends at the
 * isolate's end instead of running on.
 */
export const isolate = (value: string) =>
  value
    .split('\n')
    .map((line) => (line ? `\u2068${closedIsolates(line)}\u2069` : line))
    .join('\n');

/**
 * A line whose own isolates are balanced: one it leaves open is closed at its end, and a closing
 * mark with nothing of the line's to close goes (it closed nothing where it was typed). Else the
 * isolate around the line would end at the line's own mark, or end nothing, and the words after
 * the value would join its direction.
 */
function closedIsolates(line: string): string {
  if (!/[\u2066-\u2069]/.test(line)) return line;
  let open = 0;
  const kept = line.replace(/[\u2066-\u2069]/g, (mark) => {
    if (mark !== '\u2069') open += 1;
    else if (open > 0) open -= 1;
    else return '';
    return mark;
  });
  return kept + '\u2069'.repeat(open);
}

/** `value` isolated if it holds right-to-left text; as it is if not (a value in an all left-to-right letter needs none). */
export const isolateRightToLeft = (value: string) => (hasRightToLeft(value) ? isolate(value) : value);

/**
 * A line that is one isolated value and nothing else, unwrapped: nothing beside it to keep apart
 * from, and bare, the line takes its direction from its own words in every reader (the bidi
 * algorithm skips what an isolate holds when it picks a paragraph's direction, so a Uyghur name
 * alone on its line would be set left to right).
 */
export const unwrapLoneLines = (text: string) => (text.includes('\u2068') ? text.replace(/^\u2068([^\n\u2068\u2069]*)\u2069$/gm, '$1') : text);

/** Text without the isolate marks `isolate` puts in: for comparing what letters say. */
export const withoutIsolates = (text: string) => text.replace(/[\u2068\u2069]/g, '');

/** What `<bdi>` stands for each isolate initiator: FSI, LRI, RLI. */
const BDI: Record<string, string> = { '\u2068': '<bdi>', '\u2066': '<bdi dir="ltr">', '\u2067': '<bdi dir="rtl">' };

/**
 * Escaped HTML with each isolated value as a `<bdi>`: a line in `<div dir="auto">` takes its
 * direction from its first letter, and HTML looks inside the marks for it (a Kazakh line that
 * opens with an isolated Uyghur name was set right to left, and read backwards), but skips a
 * `<bdi>`. Marks are paired as the bidi algorithm pairs them, a PDI closing the innermost isolate
 * open, whichever kind (a note may hold its own LRI or RLI); a mark without its pair stays as it is.
 */
export function isolatesAsBdi(html: string): string {
  if (!/[\u2066-\u2068]/.test(html)) return html;
  const out = html.split(/([\u2066-\u2069])/);
  const open: number[] = [];
  for (let i = 1; i < out.length; i += 2) {
    if (out[i] !== '\u2069') open.push(i);
    else if (open.length) {
      const at = open.pop()!;
      out[at] = BDI[out[at]!]!;
      out[i] = '</bdi>';
    }
  }
  return out.join('');
}
