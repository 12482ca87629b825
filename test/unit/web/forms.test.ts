import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../../src/errors.ts';
import { emailedToken, idParam } from '../../../src/web/forms.ts';

describe('idParam', () => {
  it('reads an id written in plain digits', () => {
    expect(idParam('1', 'campaign')).toBe(1);
    expect(idParam('123456789012345', 'campaign')).toBe(123456789012345);
  });

  it('answers 404 for anything else, never guessing at what was meant', () => {
    for (const value of ['0', '-1', '01', '0x10', '1e3', ' 12 ', '12 ', '1.0', '', '1234567890123456', ['5'], 5, undefined]) {
      expect(() => idParam(value, 'campaign'), JSON.stringify(value)).toThrow(NotFoundError);
    }
  });
});

describe('emailedToken', () => {
  const run = (token: string, method = 'GET') => {
    const req = { method, baseUrl: '', path: `/confirm/${encodeURIComponent(token)}`, originalUrl: `http://evil.example/confirm/${encodeURIComponent(token)}?utm=1`, params: { token } };
    let redirected: [number, string] | undefined;
    let nexted = false;
    emailedToken(req as never, { redirect: (status: number, to: string) => (redirected = [status, to]) } as never, () => (nexted = true), token, 'token');
    return { redirected, nexted, token: req.params.token };
  };

  it('moves a page to the address without the punctuation a mail client took in, on this host whatever the request line named', () => {
    expect(run('abc-_1.)').redirected).toEqual([301, '/confirm/abc-_1?utm=1']);
    expect(run('abc', 'GET')).toEqual({ redirected: undefined, nexted: true, token: 'abc' });
    expect(run('abc.', 'POST')).toEqual({ redirected: undefined, nexted: true, token: 'abc' });
    // Nothing of a token left: an unknown token, answered as one.
    expect(run('...')).toEqual({ redirected: undefined, nexted: true, token: '...' });
  });

  // A pattern anchored at the end (`[^…]+$`) was tried from every character of such a run: a
  // path of 16,000 dots and a letter held the process 0.4 s. Walked back, it is one step.
  it('reads a long run of punctuation that does not end the token in one pass', () => {
    expect(run(`${'.'.repeat(2_000_000)}a`)).toMatchObject({ redirected: undefined, nexted: true });
  });
});
