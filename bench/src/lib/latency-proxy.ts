/**
 * A loopback TCP proxy that adds a fixed round-trip latency, so benchmarks against local emulators
 * (Azurite, the Service Bus emulator) pay roughly what a cloud round trip costs.
 * @module
 */
import net from 'node:net';

/** Options of {@link startLatencyProxy}. */
export interface LatencyProxyOptions {
  /** Where to forward connections. */
  target: { host: string; port: number };
  /** Added round-trip time in ms; each direction delays every chunk by half of it. */
  latencyMs: number;
}

/** A running proxy. */
export interface LatencyProxy {
  /** Port the proxy listens on (127.0.0.1). */
  port: number;
  /** Stops listening and destroys every open connection. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts a TCP proxy on 127.0.0.1 (free port) that forwards to `target`, delaying every chunk in
 * each direction by `latencyMs / 2` while preserving byte order.
 */
export async function startLatencyProxy(options: LatencyProxyOptions): Promise<LatencyProxy> {
  const oneWayMs = Math.max(0, options.latencyMs) / 2;
  const sockets = new Set<net.Socket>();

  /**
   * Forwards `from` → `to`, each chunk leaving `oneWayMs` after it arrived. A chunk's deadline is
   * never earlier than its predecessor's, and timers with equal or later deadlines fire in order,
   * but we still chain through a queue so order holds even if timers coalesce.
   */
  function pipeDelayed(from: net.Socket, to: net.Socket): void {
    const queue: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const flush = (): void => {
      timer = undefined;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.at <= now) {
        const item = queue.shift()!;
        if (!to.destroyed) to.write(item.chunk);
      }
      if (queue.length > 0) timer = setTimeout(flush, Math.max(0, queue[0]!.at - Date.now()));
      else if (ended && !to.destroyed) to.end();
    };
    from.on('data', (chunk: Buffer) => {
      if (oneWayMs === 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      queue.push({ at: Date.now() + oneWayMs, chunk });
      timer ??= setTimeout(flush, oneWayMs);
    });
    from.on('end', () => {
      ended = true;
      if (queue.length === 0 && timer === undefined && !to.destroyed) to.end();
    });
  }

  // allowHalfOpen: a peer's FIN must not cut off data still queued for it in the other direction.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    client.setNoDelay(true);
    const upstream = net.connect({
      host: options.target.host,
      port: options.target.port,
      allowHalfOpen: true,
    });
    upstream.setNoDelay(true);
    sockets.add(client);
    sockets.add(upstream);
    const teardown = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', teardown);
    upstream.on('error', teardown);
    client.on('close', teardown);
    upstream.on('close', teardown);
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string')
    throw new Error('latency proxy: no TCP address');

  let closing: Promise<void> | undefined;
  return {
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        sockets.clear();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
