/**
 * A small bridge from node:http to a fetch-style handler (Hono's `app.fetch`): each incoming
 * request becomes a `Request` whose `signal` aborts when the client goes away, and the handler's
 * `Response` is written back as it streams — with backpressure, and with the body's reader
 * cancelled on disconnect so that a streaming generation stops at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FetchServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Larger bodies are refused with 413 before the handler runs. */
  maxBodyBytes: number;
  /** The 413 response body (the app's error format). */
  tooLarge: (limit: number) => Response;
  /** Handler failures the handler did not turn into a response. */
  onError?: (err: unknown) => Response;
}

export interface FetchServer {
  server: Server;
  url: string;
  port: number;
  close(): Promise<void>;
}

type Handler = (req: Request) => Response | Promise<Response>;

export function serveFetch(handler: Handler, opts: FetchServerOptions): Promise<FetchServer> {
  const server = createServer((req, res) => {
    void bridge(handler, req, res, opts);
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
      resolve({
        server,
        port,
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** Reads the body up to `limit` bytes; beyond, keeps draining (so the client can read the 413) up to a hard cap. */
async function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | "too-large"> {
  const drainCap = Math.max(limit * 4, 64 << 20);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > drainCap) {
    req.destroy();
    return "too-large";
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > drainCap) {
      req.destroy();
      break;
    }
    if (size <= limit) chunks.push(chunk);
  }
  return size > limit ? "too-large" : Buffer.concat(chunks);
}

async function bridge(handler: Handler, req: IncomingMessage, res: ServerResponse, opts: FetchServerOptions): Promise<void> {
  const aborter = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) aborter.abort();
  });
  let response: Response;
  try {
    const method = req.method ?? "GET";
    let body: Uint8Array | undefined;
    if (method !== "GET" && method !== "HEAD") {
      const read = await readBody(req, opts.maxBodyBytes);
      if (read === "too-large") {
        await write(opts.tooLarge(opts.maxBodyBytes), res, aborter.signal, {});
        return;
      }
      body = read;
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) headers.append(name, v);
      else headers.set(name, value);
    }
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
    const request = new Request(url, { method, headers, body, signal: aborter.signal });
    response = await handler(request);
  } catch (err) {
    response = opts.onError?.(err) ?? new Response("internal error", { status: 500 });
  }
  await write(response, res, aborter.signal, {}, req.method === "HEAD");
}

async function write(response: Response, res: ServerResponse, signal: AbortSignal, extra: Record<string, string>, head = false): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  Object.assign(headers, extra);
  if (res.destroyed) {
    await response.body?.cancel().catch(() => {});
    return;
  }
  res.writeHead(response.status, headers);
  if (!response.body || head) {
    res.end();
    await response.body?.cancel().catch(() => {});
    return;
  }
  const reader = response.body.getReader();
  const onAbort = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await drained(res);
      if (res.destroyed) break;
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
