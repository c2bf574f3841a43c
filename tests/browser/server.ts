/**
 * A static server for the browser check on http://localhost (a secure context, which WebGPU
 * needs): the page, its bundled script, and the fixture files.
 */
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { basename, join } from "node:path";

export interface PageServer {
  url: string;
  close(): Promise<void>;
}

export async function servePage(script: string, fixturesDir: string, port = 0): Promise<PageServer> {
  const html = await readFile(new URL("./index.html", import.meta.url), "utf8");
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    try {
      if (path === "/" || path === "/index.html") return send(res, "text/html; charset=utf-8", html);
      if (path === "/page.js") return send(res, "text/javascript; charset=utf-8", script);
      if (path.startsWith("/fixtures/")) {
        // basename: only files directly in the fixtures directory are served.
        const name = basename(decodeURIComponent(path.slice("/fixtures/".length)));
        return send(res, name.endsWith(".json") ? "application/json" : "application/octet-stream", await readFile(join(fixturesDir, name)));
      }
      res.writeHead(404).end();
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function send(res: import("node:http").ServerResponse, type: string, body: string | Buffer): void {
  res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
}
