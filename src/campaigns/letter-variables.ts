// What a letter template may say and what fills it: its variables, what a target may learn of a
// supporter, and the Handlebars that reads letters. Apart so that rendering (letter-template.ts)
// and checking (letter-checks.ts) share them without importing each other.
import Handlebars from 'handlebars';

/** The variables a letter may use (DESIGN.md); anything else is a compile error. */
export const LETTER_VARIABLES = [
  'supporter.fullName',
  'supporter.city',
  'supporter.country',
  'supporter.personalNote',
  'target.name',
  'target.title',
  'target.salutation',
  'case.personName',
  'case.location',
  'campaign.title',
  'date',
] as const;

/** What a target may learn of a supporter, least first. */
export const DISCLOSE_LEVELS = ['name', 'name_place', 'full'] as const;
export type Disclose = (typeof DISCLOSE_LEVELS)[number];

export interface LetterContext {
  supporter: { fullName: string; city: string; country: string; personalNote: string };
  target: { name: string; title: string; salutation: string };
  case: { personName: string; location: string };
  campaign: { title: string };
  date: string;
}

export type SupporterField = keyof LetterContext['supporter'];

// Letters get their own Handlebars with no partials and only if/unless: an organizer's
// template can read the listed variables and nothing else.
export const letters = Handlebars.create();
for (const name of ['each', 'with', 'lookup', 'log']) letters.unregisterHelper(name);
