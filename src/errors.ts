/** Failures a person can cause. src/web/middleware/errors.ts alone maps them to HTTP. */

export type FieldErrors = Record<string, string>;

export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    readonly fields: FieldErrors,
    message = 'Some fields need attention.',
  ) {
    super(message);
  }
}

/** A letter template that does not compile; `fields` names the template and line. */
export class TemplateError extends ValidationError {
  override name = 'TemplateError';
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
  /** @param hint what the person may do about it, said after "does not exist". */
  constructor(
    readonly what: string,
    readonly hint?: string,
  ) {
    super(`${what} not found`);
  }
}

/** The request conflicts with the current state (a slug taken, a transition not allowed). */
export class ConflictError extends Error {
  override name = 'ConflictError';
  constructor(
    readonly code: string,
    message: string,
    /** The field whose value clashes, when one does (a slug taken), as input errors name theirs. */
    readonly fields?: FieldErrors,
  ) {
    super(message);
  }
}

/** Someone saved the thing being edited after the form was opened; the form's save would undo theirs. */
export class EditConflictError extends ConflictError {
  override name = 'EditConflictError';
  /** `revision`: the one saved meanwhile, for the form to carry if it is sent again on purpose. */
  constructor(
    what: string,
    readonly revision: number,
    message = `Someone saved this ${what} after you opened this form, so your changes were not saved: they would have undone theirs. Your changes are still in the form. Look at the ${what} in another tab, then save again to replace what is there.`,
  ) {
    super('edit_conflict', message);
  }
}

/** The campaign does not take signatures now: paused (409) or closed (410). */
export class CampaignNotOpenError extends Error {
  override name = 'CampaignNotOpenError';
  constructor(
    readonly status: 'paused' | 'closed',
    readonly campaignTitle: string,
  ) {
    super(status === 'closed' ? 'This campaign is closed.' : 'This campaign is paused and not taking signatures right now.');
  }
}

/**
 * A signature from a page that listed other targets, or told them less, than the campaign now
 * has, where its letters would go at once (confirmation off): not stored; the page shows them again.
 */
export class TargetsChangedError extends Error {
  override name = 'TargetsChangedError';
  constructor() {
    super('The officials this letter goes to, or what they learn about you, changed while the page was open. Check them and sign again: nothing was sent.');
  }
}

/**
 * A signature from a page whose letter an organizer replaced, longer ago than a page is read and
 * signed in (SEEN_LETTER_KEPT): not stored, so a withdrawn text goes nowhere; the page shows the
 * letter as it is.
 */
export class LetterChangedError extends Error {
  override name = 'LetterChangedError';
  constructor() {
    super('The letter changed while the page was open. Read it again and sign again: nothing was sent.');
  }
}

/** A link that worked once and has been used or has expired; `next`: where the page points instead. */
export class GoneError extends Error {
  override name = 'GoneError';
  constructor(
    message: string,
    readonly next?: { href: string; label: string },
  ) {
    super(message);
  }
}

/** A request body in a format its route does not read (the API reads JSON only). */
export class UnsupportedMediaTypeError extends Error {
  override name = 'UnsupportedMediaTypeError';
}

/** A JSON body that is valid JSON but no object (an array: see jsonObject). */
export class JsonNotObjectError extends Error {
  override name = 'JsonNotObjectError';
}

/** A body declared in a charset other than UTF-8 (body-parser's own refusal has the same type). */
export class UnsupportedCharsetError extends Error {
  override name = 'UnsupportedCharsetError';
  readonly status = 415;
  readonly type = 'charset.unsupported';
  constructor(charset: string) {
    super(`unsupported charset "${charset}"`);
  }
}

/**
 * A body that is not UTF-8 (see src/web/middleware/utf8.ts). `status` and `type` are what
 * body-parser reads from an error thrown by its `verify`: without them it would answer 403.
 */
export class InvalidEncodingError extends Error {
  override name = 'InvalidEncodingError';
  readonly status = 400;
  readonly type = 'encoding.invalid';
  constructor() {
    super('The request body is not valid UTF-8.');
  }
}

/** A form body with a `%` that is not followed by two hexadecimal digits. */
export class MalformedEscapeError extends Error {
  override name = 'MalformedEscapeError';
  readonly status = 400;
  constructor() {
    super('The form has a % that is not followed by two hexadecimal digits: send % itself as %25, as a browser does.');
  }
}

/** A console form no page of the console sends: a field repeated, or a value none of its buttons has. */
export class BadFormError extends Error {
  override name = 'BadFormError';
  readonly status = 400;
}

/** A form that sent a field more than once where the page has it once. */
export class RepeatedFieldError extends BadFormError {
  override name = 'RepeatedFieldError';
  constructor(readonly field: string) {
    super(`The form sent the field "${field}" more than once.`);
  }
}

/** A multipart form that could not be read: cut off, or with no boundary. */
export class UnreadableFormError extends Error {
  override name = 'UnreadableFormError';
}

/** A request body over what its route takes. */
export class TooLargeError extends Error {
  override name = 'TooLargeError';
}

/** A body that must say its length up front (a console form with a file) and did not. */
export class LengthRequiredError extends Error {
  override name = 'LengthRequiredError';
}

export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  /** @param by what ran out: this client's posts, or the emails one address may be sent. */
  constructor(
    readonly retryAfterSeconds: number,
    readonly by: 'client' | 'address' = 'client',
  ) {
    super('Too many requests.');
  }
}

/** A path that exists, asked with a method it does not take. */
export class MethodNotAllowedError extends Error {
  override name = 'MethodNotAllowedError';
  constructor(readonly allowed: readonly string[]) {
    super(`This address takes ${allowed.join(', ')}.`);
  }
}

export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}
