import type { Db } from '../../src/db/index.ts';
import { addOrganizer } from '../../src/organizers/service.ts';
import { uniq } from './fixtures.ts';

export const PASSWORD = 'correct horse battery staple';

/** A browser without the browser: keeps cookies, follows nothing, reads the CSRF token off forms. */
export class ConsoleClient {
  readonly cookies = new Map<string, string>();
  lastSetCookies: string[] = [];

  constructor(readonly base: string) {}

  private remember(res: Response) {
    this.lastSetCookies = res.headers.getSetCookie();
    for (const line of this.lastSetCookies) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i);
      const value = pair!.slice(i + 1);
      if (!value || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(path: string, opts: { headers?: Record<string, string> } = {}): Promise<{ status: number; text: string; location: string | null; res: Response }> {
    const res = await fetch(this.base + path, { headers: { cookie: this.header(), ...opts.headers }, redirect: 'manual' });
    this.remember(res);
    // Read from a copy: res's own body is left for a test that wants the bytes (a download's).
    return { status: res.status, text: await res.clone().text(), location: res.headers.get('location'), res };
  }

  /** Posts a form; a field given a list is sent once for each of its values. */
  async post(path: string, form: Record<string, string | string[]>, opts: { csrf?: string | false; headers?: Record<string, string> } = {}) {
    const body = new URLSearchParams(Object.entries(form).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => [k, x])));
    if (opts.csrf !== false) body.set('_csrf', opts.csrf ?? this.csrf ?? '');
    const res = await fetch(this.base + path, {
      method: 'POST',
      body,
      headers: { cookie: this.header(), 'content-type': 'application/x-www-form-urlencoded', ...opts.headers },
      redirect: 'manual',
    });
    this.remember(res);
    const text = await res.text();
    const token = /name="_csrf" value="([^"]+)"/.exec(text)?.[1];
    if (token) this.csrf = token;
    return { status: res.status, text, location: res.headers.get('location'), res };
  }

  /** Posts as multipart/form-data, as a browser does a form with a file input. */
  async postFiles(path: string, form: Record<string, string>, files: Record<string, { name: string; content: string | Uint8Array<ArrayBuffer> }>, opts: { headers?: Record<string, string> } = {}) {
    const body = new FormData();
    body.set('_csrf', this.csrf ?? '');
    for (const [k, v] of Object.entries(form)) body.set(k, v);
    for (const [k, f] of Object.entries(files)) body.set(k, new Blob([f.content], { type: 'text/csv' }), f.name);
    const res = await fetch(this.base + path, { method: 'POST', body, headers: { cookie: this.header(), ...opts.headers }, redirect: 'manual' });
    this.remember(res);
    return { status: res.status, text: await res.text(), location: res.headers.get('location'), res };
  }

  /** Posts a body made by hand, as a script (not a browser) might. */
  /** POSTs `body` as it is; `chunked` sends it in chunks, saying no length, as a script may. */
  async raw(path: string, body: Buffer, contentType: string, chunked = false) {
    const stream = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array(body)), c.close()) });
    const res = await fetch(this.base + path, { method: 'POST', body: chunked ? stream : new Uint8Array(body), headers: { cookie: this.header(), 'content-type': contentType }, redirect: 'manual', ...(chunked ? { duplex: 'half' } : {}) } as RequestInit);
    this.remember(res);
    return { status: res.status, text: await res.text() };
  }

  csrf: string | undefined;

  /** GETs a page and keeps the CSRF token of its forms. */
  async open(path: string) {
    const page = await this.get(path);
    const token = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
    if (token) this.csrf = token;
    return page;
  }

  async login(email: string, password = PASSWORD) {
    await this.open('/admin/login');
    const res = await this.post('/admin/login', { email, password, next: '/admin' });
    if (res.status === 303) await this.open('/admin');
    return res;
  }
}

export async function createOrganizer(db: Db, role: 'admin' | 'organizer' = 'organizer') {
  const email = `${uniq(role)}@appeal.test`;
  const { organizer } = await addOrganizer(db, { email, role, password: PASSWORD, name: `Test ${role}` });
  return organizer;
}

export async function signedIn(base: string, db: Db, role: 'admin' | 'organizer' = 'organizer') {
  const organizer = await createOrganizer(db, role);
  const client = new ConsoleClient(base);
  const res = await client.login(organizer.email);
  if (res.status !== 303) throw new Error(`sign-in failed with ${res.status}`);
  return { client, organizer };
}
