import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DashboardHandler } from './handler.js';

/** Options of {@link serveDashboard}. */
export interface ServeDashboardOptions {
  handler: DashboardHandler;
  /** @defaultValue 4000 (0 picks a free port) */
  port?: number;
  /** @defaultValue `'127.0.0.1'` */
  host?: string;
}

/** A dashboard served over node:http. */
export interface ServedDashboard {
  server: Server;
  /** e.g. `http://127.0.0.1:4000` */
  url: string;
  /** Stops accepting connections and ends open ones (live streams included). */
  close(): Promise<void>;
}

/**
 * Serves a dashboard handler on node:http (the CLI's `switchyard dashboard` and the demo's
 * `--dashboard`), streaming response bodies so live updates arrive as they are sent.
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<ServedDashboard> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((req, res) => {
    void respond(options.handler, req, res, host);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 4000, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    url: `http://${shown}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function respond(
  handler: DashboardHandler,
  req: IncomingMessage,
  res: ServerResponse,
  host: string,
): Promise<void> {
  const abort = new AbortController();
  res.on('close', () => abort.abort());
  try {
    const headerHost = req.headers.host;
    const origin = `http://${headerHost && /^[\w.:[\]-]+$/.test(headerHost) ? headerHost : host}`;
    const method = req.method ?? 'GET';
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers))
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value])
        headers.append(name, v);
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const request = new Request(new URL(req.url ?? '/', origin), {
      method,
      headers,
      signal: abort.signal,
      ...(hasBody
        ? { body: Readable.toWeb(req) as ReadableStream<Uint8Array>, duplex: 'half' }
        : {}),
    } as RequestInit);
    const response = await handler(request);
    res.statusCode = response.status;
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') res.setHeader(name, value);
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) res.setHeader('set-cookie', cookies);
    if (!response.body) {
      res.end();
      return;
    }
    res.flushHeaders();
    await pipeline(
      Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
      res,
    );
  } catch {
    if (!res.headersSent) {
      res.statusCode = 400;
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.end(JSON.stringify({ error: { code: 'BAD_REQUEST', message: 'unsupported request' } }));
    } else res.destroy();
  }
}
