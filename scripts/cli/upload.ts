/**
 * `petrel upload FILE --name ID [--local | --remote] [--ctx N] [--kv-type f32|f16] [--plan PLAN.json]
 * [--persist-to DIR] [--config wrangler.toml] [--json]`
 *
 * Puts a GGUF model into the worker's R2 bucket with its manifest entry (architecture, quant,
 * size, context length, chat template present): `models/ID.gguf` and `manifest/ID.json`. The
 * file is checked first — a valid GGUF of a supported architecture whose weights load and whose
 * tokenizer builds — and refused with the reason otherwise.
 *
 * With --plan (from `petrel shard`), the plan goes to `plans/ID.json` and the manifest names it:
 * the worker then serves the model as a pipeline of ShardDOs.
 *
 * Local (the default) writes the bucket `wrangler dev` serves (`.wrangler/state` unless
 * --persist-to), through the same miniflare wrangler uses; --remote uses `wrangler r2 object put`.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { GGUFError } from "../../kernels/gguf/types.ts";
import { createJsBackend } from "../../kernels/model/backends/js.ts";
import { loadModel } from "../../kernels/model/model.ts";
import { describeModel, manifestKey, modelKey, type ModelManifest } from "../../workers/manifest.ts";
import { isShardPlan, planKey, type ShardedManifest, type ShardPlan } from "../../durable-objects/shard-plan.ts";
import { CliError, Flags, parseArgs } from "./args.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OPTIONS = ["name", "local", "remote", "ctx", "kv-type", "persist-to", "config", "json", "source", "plan"];

export interface UploadOptions {
  id: string;
  nCtx?: number;
  kvType?: "f32" | "f16";
  remote?: boolean;
  /** Local state directory (wrangler dev's --persist-to); default .wrangler/state. */
  persistTo?: string;
  configPath?: string;
  source?: string;
  /** A shard plan (`petrel shard --out`): the model is served as a pipeline of ShardDOs. */
  plan?: ShardPlan;
}

/** Checks a GGUF file and describes it; a CliError with the reason when Petrel cannot serve it. */
export function validateModel(bytes: Uint8Array, opts: { id: string; nCtx?: number; kvType?: "f32" | "f16"; source?: string; label: string }): ModelManifest {
  let manifest: ModelManifest;
  try {
    const file = parseGGUF(bytes);
    manifest = describeModel(file, {
      id: opts.id,
      size: bytes.length,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      nCtx: opts.nCtx,
      kvType: opts.kvType,
      source: opts.source,
    });
    loadModel(file, createJsBackend()); // every tensor present, with the shape the architecture needs
  } catch (e) {
    if (e instanceof GGUFError || e instanceof Error) throw new CliError(`${opts.label} cannot be served: ${e.message}`);
    throw e;
  }
  return manifest;
}

/** The R2 bucket name bound as MODELS in wrangler.toml. */
export function bucketName(configPath = join(ROOT, "wrangler.toml")): string {
  const toml = readFileSync(configPath, "utf8");
  const block = toml.split("[[r2_buckets]]").slice(1).find((b) => /binding\s*=\s*"MODELS"/.test(b));
  const name = block?.match(/bucket_name\s*=\s*"([^"]+)"/)?.[1];
  if (!name) throw new CliError(`${configPath} binds no R2 bucket as MODELS`);
  return name;
}

/** The part of a local R2 bucket (miniflare's binding) the CLI uses. */
export interface LocalBucket {
  put(key: string, value: Uint8Array, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer>; json<T>(): Promise<T> } | null>;
  head(key: string): Promise<unknown | null>;
}

interface MiniflareLike {
  getR2Bucket(binding: string): Promise<LocalBucket>;
  dispose(): Promise<void>;
}

/** A miniflare instance over the local state `wrangler dev` uses (wrangler's own miniflare, so the format matches). */
export async function openLocalBucket(persistTo: string, bucket: string): Promise<{ r2: LocalBucket; dispose: () => Promise<void> }> {
  const requireFromWrangler = createRequire(createRequire(import.meta.url).resolve("wrangler/package.json"));
  const { Miniflare } = (await import(pathToFileURL(requireFromWrangler.resolve("miniflare")).href)) as { Miniflare: new (options: object) => MiniflareLike };
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null, { status: 404 }) } }",
    r2Buckets: { MODELS: bucket },
    r2Persist: join(resolve(persistTo), "v3", "r2"),
  });
  const r2 = await mf.getR2Bucket("MODELS");
  return { r2, dispose: () => mf.dispose() };
}

function wrangler(args: string[], input?: Uint8Array): Promise<void> {
  const bin = join(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: ROOT, stdio: [input ? "pipe" : "ignore", "inherit", "inherit"], env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
    if (input) child.stdin!.end(input);
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolvePromise() : reject(new CliError(`wrangler ${args.slice(0, 3).join(" ")} failed (exit ${code})`))));
  });
}

/** Uploads a checked model file and its manifest entry. */
export async function uploadModel(path: string, bytes: Uint8Array, opts: UploadOptions): Promise<ModelManifest> {
  const manifest: ShardedManifest = validateModel(bytes, { id: opts.id, nCtx: opts.nCtx, kvType: opts.kvType, source: opts.source, label: path });
  const plan = opts.plan;
  if (plan) {
    const layers = parseGGUF(bytes).metadata.get(`${manifest.architecture}.block_count`);
    if (plan.nLayer !== Number(layers) || plan.nCtx < manifest.n_ctx || plan.kvType !== manifest.kv_type) {
      throw new CliError(`the shard plan (${plan.nLayer} layers, n_ctx ${plan.nCtx}, ${plan.kvType} KV) does not fit ${path} served at n_ctx ${manifest.n_ctx} with ${manifest.kv_type} KV: make it with petrel shard --ctx ${manifest.n_ctx} --kv-type ${manifest.kv_type}`);
    }
    manifest.shard_plan = planKey(opts.id);
  }
  const bucket = bucketName(opts.configPath);
  const planJson = plan && new TextEncoder().encode(JSON.stringify(plan));
  const manifestJson = new TextEncoder().encode(JSON.stringify(manifest, null, 2));
  if (opts.remote) {
    const config = ["--config", opts.configPath ?? join(ROOT, "wrangler.toml")];
    await wrangler(["r2", "object", "put", `${bucket}/${modelKey(opts.id)}`, "--file", resolve(path), "--remote", ...config]);
    if (planJson) await wrangler(["r2", "object", "put", `${bucket}/${planKey(opts.id)}`, "--pipe", "--content-type", "application/json", "--remote", ...config], planJson);
    await wrangler(["r2", "object", "put", `${bucket}/${manifestKey(opts.id)}`, "--pipe", "--content-type", "application/json", "--remote", ...config], manifestJson);
    return manifest;
  }
  const local = await openLocalBucket(opts.persistTo ?? join(ROOT, ".wrangler/state"), bucket);
  try {
    await local.r2.put(modelKey(opts.id), bytes);
    if (planJson) await local.r2.put(planKey(opts.id), planJson, { httpMetadata: { contentType: "application/json" } });
    await local.r2.put(manifestKey(opts.id), manifestJson, { httpMetadata: { contentType: "application/json" } });
  } finally {
    await local.dispose();
  }
  return manifest;
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["local", "remote", "json"]), OPTIONS);
  const [path, ...extra] = flags.positional;
  if (!path || extra.length > 0) throw new CliError("usage: petrel upload FILE --name ID [--local | --remote] [--ctx N] [--kv-type f32|f16] [--plan PLAN.json]");
  if (flags.bool("local") && flags.bool("remote")) throw new CliError("give --local or --remote, not both");
  const kvType = flags.string("kv-type");
  if (kvType !== undefined && kvType !== "f32" && kvType !== "f16") throw new CliError(`--kv-type must be f32 or f16, got '${kvType}'`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new CliError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const planPath = flags.string("plan");
  let plan: ShardPlan | undefined;
  if (planPath !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(planPath, "utf8"));
    } catch (e) {
      throw new CliError(`cannot read the shard plan ${planPath}: ${(e as Error).message}`);
    }
    if (!isShardPlan(parsed)) throw new CliError(`${planPath} is not a shard plan (make one with petrel shard --out)`);
    plan = parsed;
  }
  const manifest = await uploadModel(path, bytes, {
    plan,
    id: flags.requireString("name"),
    nCtx: flags.number("ctx", { integer: true, min: 1 }),
    kvType,
    remote: flags.bool("remote"),
    persistTo: flags.string("persist-to"),
    configPath: flags.string("config"),
    source: flags.string("source"),
  });
  if (flags.bool("json")) process.stdout.write(JSON.stringify(manifest) + "\n");
  else {
    process.stdout.write(`uploaded ${manifest.id}: ${manifest.architecture} ${manifest.quantization}, ${(manifest.size / 1e6).toFixed(1)} MB, ` +
      `n_ctx ${manifest.n_ctx} of ${manifest.context_length}, chat template ${manifest.chat_template ? "yes" : "no (ChatML fallback)"}` +
      ` → ${flags.bool("remote") ? "remote" : "local"} bucket\n`);
  }
}

/** Lets the command run directly (`node --import tsx scripts/cli/upload.ts …`) before the dispatcher lists it. */
export async function runAsMain(meta: ImportMeta, fn: (argv: string[]) => Promise<void>, name: string): Promise<void> {
  if (process.argv[1] === undefined || pathToFileURL(resolve(process.argv[1])).href !== meta.url) return;
  try {
    await fn(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`petrel ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
  // miniflare and undici keep sockets alive for a while; nothing is pending once run() returned.
  process.exit();
}

await runAsMain(import.meta, run, "upload");
