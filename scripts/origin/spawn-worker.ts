/**
 * Starts the worker the way `npm start` does (scripts/start.ts → wrangler dev, local R2/KV/DO
 * state in `state`) on a free 127.0.0.1 port, with extra `--var`s (ORIGIN_ROUTES, origin keys,
 * BACKEND…), and resolves once /health answers. Used by the origin end-to-end tests and by
 * `npm run bench:origin` to put the real edge hop in front of an origin.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const START = fileURLToPath(new URL("../start.ts", import.meta.url));

export interface WorkerProcess {
  url: string;
  /** Everything wrangler printed so far. */
  output(): string;
  /** SIGTERM to wrangler and its workerd (the whole process group); resolves when they exited. */
  stop(): Promise<void>;
}

/** MODERATION_POLICIES that turn every check off: benchmarks that measure something else. */
export const NO_MODERATION = JSON.stringify({ "*": { checks: { rules: false, classifier: false, judge: false, external: false } } });

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Starts the worker as `npm start` does, on a free port with its own local state; `demo` also puts the demo model into R2. */
export async function startWorker(opts: { state: string; vars?: Record<string, string>; timeoutMs?: number; demo?: boolean }): Promise<WorkerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const vars = Object.entries(opts.vars ?? {}).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
  const child = spawn(process.execPath, ["--import", "tsx", START, ...vars], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), PETREL_STATE: opts.state, ...(!opts.demo && { PETREL_NO_DEMO: "1" }) },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(-child.pid, "SIGTERM");
    await exited;
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 150_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${out}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, output: () => out, stop };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the worker did not come up:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
