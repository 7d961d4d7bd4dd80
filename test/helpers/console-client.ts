// A client of the console's JSON API as a script or a browser uses it: POST /login (JSON) sets the session cookie
// cxr_session and the CSRF secret cookie cxr_csrf, GET /api/v1/session gives the CSRF token that every
// state-changing call sends as x-csrf-token. Cookies are kept in a small jar of our own (Node's fetch keeps none).
// Every call names its route template (e.g. /api/v1/deliveries/{id}/release), so a test can check that the
// OpenAPI document lists each route it called.

export interface ApiResponse<T = unknown> {
  status: number;
  contentType: string;
  /** Parsed JSON when the answer is JSON, else undefined. */
  json: T;
  bytes: Buffer;
}

/** `{ error, message }`: what every refusal of the API carries. */
export interface ApiError {
  error: string;
  message: string;
}

export class ConsoleClient {
  private readonly cookies = new Map<string, string>();
  private csrf: string | undefined;
  /** Headers sent with every call besides the cookies and the token (e.g. a forged x-forwarded-for). */
  headers: Record<string, string> = {};
  /** Route templates called, as `METHOD /path/{param}`. */
  readonly called = new Set<string>();

  constructor(readonly base: string) {}

  /** POST /login with JSON, then GET /api/v1/session for the CSRF token (as the console's own pages do). */
  async logIn(user: string, password: string): Promise<void> {
    const login = await this.request('POST', '/login', {}, { user, password });
    if (login.status !== 200) throw new Error(`login as ${user}: HTTP ${login.status} ${login.bytes.toString()}`);
    const session = await this.get<{ csrfToken: string; user: string }>('/api/v1/session');
    if (session.status !== 200) throw new Error(`GET /api/v1/session: HTTP ${session.status}`);
    this.csrf = session.json.csrfToken;
  }

  get<T = unknown>(
    template: string,
    params: Record<string, string | number> = {},
    query = '',
  ): Promise<ApiResponse<T>> {
    return this.request<T>('GET', template, params, undefined, query);
  }

  post<T = unknown>(
    template: string,
    params: Record<string, string | number> = {},
    body: unknown = {},
  ): Promise<ApiResponse<T>> {
    return this.request<T>('POST', template, params, body);
  }

  async request<T>(
    method: 'GET' | 'POST',
    template: string,
    params: Record<string, string | number>,
    body?: unknown,
    query = '',
    /** The x-csrf-token to send instead of the session's (null: none at all), to test the refusals. */
    csrf?: string | null,
  ): Promise<ApiResponse<T>> {
    this.called.add(`${method} ${template}`);
    const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
      return encodeURIComponent(String(value));
    });
    const headers: Record<string, string> = { ...this.headers };
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (body !== undefined) headers['content-type'] = 'application/json';
    const token = csrf === undefined ? this.csrf : (csrf ?? undefined);
    if (method === 'POST' && token !== undefined) headers['x-csrf-token'] = token;
    const response = await fetch(`${this.base}${path}${query === '' ? '' : `?${query}`}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    });
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    const contentType = response.headers.get('content-type') ?? '';
    const json = (contentType.startsWith('application/json') ? JSON.parse(bytes.toString('utf8')) : undefined) as T;
    return { status: response.status, contentType, json, bytes };
  }
}
