/**
 * Starts the Node origin as a child process (`node --import tsx scripts/origin/main.ts …`), as
 * a user would, and resolves once it printed its `listening` line. Used by the tests and by
 * `npm run bench:origin`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface OriginProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything it wrote to stderr so far (its JSON log lines). */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL now (a crash, as far as clients can tell). */
  kill(): Promise<void>;
}

export function spawnOrigin(args: readonly string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<OriginProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "--port", "0", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  let err = "";
  let out = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    if (err.length > 1 << 20) err = err.slice(-(1 << 19));
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill("SIGKILL");
      reject(new Error(`the origin did not start within ${opts.timeoutMs ?? 60_000} ms:\n${err}`));
    }, opts.timeoutMs ?? 60_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the origin exited (${code ?? signal}) before listening:\n${err}`));
    });
    child.stdout!.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (!line) return;
      clearTimeout(timer);
      const { url, port } = JSON.parse(line) as { url: string; port: number };
      resolve({
        url,
        port,
        child,
        stderr: () => err,
        stop: async (graceMs = 3000) => {
          const t = setTimeout(() => void kill("SIGKILL"), graceMs);
          await kill("SIGTERM");
          clearTimeout(t);
        },
        kill: () => kill("SIGKILL"),
      });
    });
  });
}
