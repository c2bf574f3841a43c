/**
 * `npm start`: runs the worker locally with `wrangler dev` on 127.0.0.1:8787 (PORT overrides),
 * with no cloud account. On first start it writes .dev.vars from .dev.vars.example (the local key
 * sk-petrel-local), puts the moderation classifier and the demo model `petrel-demo` into the local
 * R2 bucket, synthesizing the model (a small llama with the real llama SPM vocabulary,
 * deterministic weights) if absent.
 *
 * Environment: PORT (8787), PETREL_STATE (local state directory, default .wrangler/state),
 * PETREL_NO_DEMO=1 (skip the demo model). Extra arguments go to `wrangler dev`.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { GGMLType } from "../kernels/gguf/types.ts";
import { manifestKey } from "../workers/manifest.ts";
import { bucketName, openLocalBucket, ROOT, uploadModel } from "./cli/upload.ts";
import { synthesize } from "./lib/synth.ts";
import { uploadClassifierLocally } from "./moderation/upload.ts";

export const DEMO_MODEL = "petrel-demo";
const DEMO_FILE = join(ROOT, ".cache", "petrel-demo.gguf");

function say(line: string): void {
  process.stderr.write(`petrel start: ${line}\n`);
}

/** The demo model's file: synthesized once (about 21 MB, Q8_0, 4 layers × 256, vocabulary of 32000). */
export function demoModelFile(): string {
  if (existsSync(DEMO_FILE)) return DEMO_FILE;
  say(`synthesizing the demo model into ${DEMO_FILE}`);
  mkdirSync(dirname(DEMO_FILE), { recursive: true });
  const vocab = parseGGUF(new Uint8Array(readFileSync(join(ROOT, "tests/fixtures/vocab/ggml-vocab-llama-spm.gguf"))));
  const bytes = synthesize({ arch: "llama", nEmbd: 256, nLayer: 4, nHead: 8, nHeadKv: 4, nFf: 768, type: GGMLType.Q8_0, vocab, nCtx: 2048, seed: 1 });
  writeFileSync(DEMO_FILE, bytes);
  return DEMO_FILE;
}

/** Puts petrel-demo into the local bucket unless it is there. */
export async function ensureDemoModel(persistTo: string): Promise<void> {
  const local = await openLocalBucket(persistTo, bucketName());
  let present: boolean;
  try {
    present = (await local.r2.head(manifestKey(DEMO_MODEL))) !== null;
  } finally {
    await local.dispose();
  }
  if (present) return;
  const file = demoModelFile();
  say(`uploading ${DEMO_MODEL} to the local R2 bucket`);
  await uploadModel(file, new Uint8Array(readFileSync(file)), { id: DEMO_MODEL, persistTo, nCtx: 2048, source: "petrel synth (demo)" });
}

export function ensureDevVars(): void {
  const vars = join(ROOT, ".dev.vars");
  if (!existsSync(vars)) {
    copyFileSync(join(ROOT, ".dev.vars.example"), vars);
    say("wrote .dev.vars from .dev.vars.example (local key: sk-petrel-local)");
  }
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8787);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`PORT must be a TCP port, got '${process.env.PORT}'`);
  const persistTo = process.env.PETREL_STATE ?? join(ROOT, ".wrangler/state");
  ensureDevVars();
  if (process.env.PETREL_NO_DEMO !== "1") await ensureDemoModel(persistTo);
  // The moderation classifier of the default policy, next to the models (refreshed on every start).
  await uploadClassifierLocally(persistTo);

  const bin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
  const args = [bin, "dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo, "--show-interactive-dev-session=false", ...process.argv.slice(2)];
  say(`http://127.0.0.1:${port} (key: sk-petrel-local, model: ${DEMO_MODEL})`);
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] !== undefined && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  await main().catch((e) => {
    say(e instanceof Error ? e.message : String(e));
    process.exit(1);
  });
}
