/**
 * Estimates `petrel bench`'s RSS just before it loads a model, for when `petrel bench` does not
 * report it itself: imports the same modules (scripts/cli/bench.ts and everything it imports),
 * creates the backend, and prints `{"rss_mb":…}`. Run in its own process, like a measurement.
 *
 *   node --import tsx scripts/bench/ours-baseline.ts --backend js|wasm [--threads N]
 */
import { createBackend, isBackendName } from "../../kernels/model/backends/index.ts";
import "../cli/bench.ts";

const argv = process.argv.slice(2);
const at = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const backend = at("backend") ?? "js";
if (!isBackendName(backend)) throw new Error(`unknown backend ${backend}`);
const threads = at("threads");
await createBackend(backend, { threads: threads === undefined ? undefined : Number(threads) });
process.stdout.write(JSON.stringify({ rss_mb: process.memoryUsage().rss / (1024 * 1024) }) + "\n");
