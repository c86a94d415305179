/** The dashboard's JSON API and live updates, as the page calls them. */

/** Where the dashboard is mounted: the folder of `assets/app.js`. */
export const basePath = new URL('..', import.meta.url).pathname.replace(/\/+$/, '');

let csrfToken = '';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Session {
  authenticated: boolean;
  method: 'none' | 'token' | 'hmac-key';
  csrfToken?: string;
  transports?: string[];
  jobNames?: string[];
  deadLetterTransports?: string[];
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${basePath}/api${path}`, {
    method,
    credentials: 'same-origin',
    headers: {
      accept: 'application/json',
      ...(method === 'POST'
        ? { 'content-type': 'application/json', 'x-csrf-token': csrfToken }
        : {}),
    },
    ...(method === 'POST' ? { body: JSON.stringify(body ?? {}) } : {}),
  });
  const data = (await response.json().catch(() => ({}))) as {
    error?: { code: string; message: string };
  };
  if (!response.ok)
    throw new ApiError(
      response.status,
      data.error?.code ?? 'HTTP',
      data.error?.message ?? `HTTP ${response.status}`,
    );
  return data as T;
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body);

export async function loadSession(): Promise<Session> {
  const session = await get<Session>('/session');
  if (session.csrfToken) csrfToken = session.csrfToken;
  return session;
}

export async function login(token: string): Promise<void> {
  const result = await post<{ csrfToken: string }>('/login', { token });
  csrfToken = result.csrfToken;
}

export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== '') search.set(k, String(v));
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Subscribes to live updates: Server-Sent Events from `/api/live`, or polling `poll` every
 * `intervalMs` when the stream does not open (a host that buffers responses). Returns a stop function.
 */
export function live(
  params: Record<string, string | undefined>,
  handlers: Record<string, (data: never) => void>,
  poll: () => Promise<void>,
  intervalMs = 2000,
): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let source: EventSource | undefined;
  const startPolling = () => {
    source?.close();
    source = undefined;
    const tick = async () => {
      if (stopped) return;
      await poll().catch(() => {});
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
  };
  if (typeof EventSource === 'undefined') startPolling();
  else {
    source = new EventSource(`${basePath}/api/live${query(params)}`, { withCredentials: true });
    const fallback = setTimeout(startPolling, 4000);
    source.addEventListener('hello', () => clearTimeout(fallback));
    source.addEventListener('error', () => {
      // A refused stream (a host without streaming, an expired session) is closed for good.
      if (source?.readyState === EventSource.CLOSED) {
        clearTimeout(fallback);
        startPolling();
      }
    });
    for (const [event, handle] of Object.entries(handlers))
      source.addEventListener(event, (e) =>
        handle(JSON.parse((e as MessageEvent<string>).data) as never),
      );
  }
  return () => {
    stopped = true;
    source?.close();
    if (timer) clearTimeout(timer);
  };
}
