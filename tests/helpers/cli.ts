/** Runs the real `scripts/petrel` executable, as a user would. */
import { spawnSync } from "node:child_process";

const PETREL = new URL("../../scripts/petrel", import.meta.url).pathname;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function petrel(...args: string[]): CliResult {
  const r = spawnSync(PETREL, args, { encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
