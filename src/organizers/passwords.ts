import crypto from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(crypto.scrypt) as (pw: string, salt: Buffer, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;
// OWASP's scrypt floor is N=2^17 r=8 p=1; 2^15 keeps a login under ~100 ms on a small machine
// while each guess still costs 32 MiB of memory.
const PARAMS = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

/** `scrypt$N$r$p$salt$hash`, base64url parts: the parameters travel with the hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(16);
  const key = await scrypt(password, salt, KEY_LENGTH, PARAMS);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n), r: Number(r), p: Number(p), maxmem: PARAMS.maxmem,
  });
  return crypto.timingSafeEqual(key, expected);
}

/** A hash of a random password nobody knows: lets a failed login for an unknown email cost the same. */
export const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** zxcvbn's estimate of 0–4; below this a password falls to an offline guesser within hours. */
const MIN_STRENGTH = 3;

let estimator: Promise<import('@zxcvbn-ts/core').ZxcvbnFactory> | undefined;

/**
 * What is wrong with a new password beyond its length: one of the common passwords or close to
 * one, a keyboard walk, a date, or made of the organizer's own email or name. Estimated with
 * zxcvbn (its common-password dictionaries are loaded at the first call, not at start).
 * @returns a message for the password field, or undefined when the password is strong enough.
 */
export async function passwordWeakness(password: string, userInputs: string[] = []): Promise<string | undefined> {
  estimator ??= Promise.all([import('@zxcvbn-ts/core'), import('@zxcvbn-ts/language-common')]).then(
    ([{ ZxcvbnFactory }, common]) => new ZxcvbnFactory({ dictionary: common.dictionary, graphs: common.adjacencyGraphs }),
    (err: unknown) => {
      estimator = undefined; // the next check tries again
      throw err;
    },
  );
  const inputs = userInputs.flatMap((s) => [s, ...s.split(/[@.\s_-]+/)]).filter((s) => s.length >= 3);
  // zxcvbn finds one copy of a name; "Otto Org Otto Org" or the email twice it scores as strong.
  if (inputs.length > 0 && leftAfter(password, inputs).length < MIN_OWN_CHARACTERS) return tooEasy('it is made of your email or name');
  const result = (await estimator).check(password, inputs);
  if (result.score >= MIN_STRENGTH) return undefined;
  return tooEasy(result.feedback.warning === 'userInputs' ? 'it is made of your email or name' : 'it is, or is close to, a common password or pattern');
}

const tooEasy = (why: string) => `is too easy to guess (${why}); a few unrelated words make a strong one`;

/** Letters and digits a password must have besides the organizer's own email and name. */
const MIN_OWN_CHARACTERS = 8;

/** The letters and digits of a password once every piece of the email and name is taken out. */
function leftAfter(password: string, inputs: string[]): string {
  let rest = password.toLowerCase();
  for (const piece of [...inputs].sort((a, b) => b.length - a.length)) rest = rest.split(piece.toLowerCase()).join(' ');
  return rest.replace(/[^\p{L}\p{N}]/gu, '');
}
