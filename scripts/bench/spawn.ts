/** Runs one measurement as a child process and parses the JSON line it prints last. */
import { spawn } from "node:child_process";

export interface ChildOutcome<T> {
  ok: boolean;
  value?: T;
  /** One line saying why it failed. */
  error?: string;
  wall_s: number;
}

export function runJsonChild<T>(cmd: string, args: string[], opts: { cwd: string; timeoutS: number }): Promise<ChildOutcome<T>> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutS * 1000);
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      clearTimeout(timer);
      const wall_s = (performance.now() - started) / 1000;
      const lastErr = stderr.trim().split("\n").filter(Boolean).at(-1);
      if (spawnError) return resolve({ ok: false, error: spawnError.message, wall_s });
      if (timedOut) return resolve({ ok: false, error: `timed out after ${opts.timeoutS} s`, wall_s });
      if (code !== 0) return resolve({ ok: false, error: lastErr ?? `exit ${code ?? signal}`, wall_s });
      const line = stdout.trim().split("\n").at(-1);
      try {
        resolve({ ok: true, value: JSON.parse(line ?? "") as T, wall_s });
      } catch {
        resolve({ ok: false, error: `no JSON in output: ${(line ?? "").slice(0, 200)}`, wall_s });
      }
    };
    child.on("error", (e) => finish(null, null, e));
    child.on("close", (code, signal) => finish(code, signal));
  });
}
