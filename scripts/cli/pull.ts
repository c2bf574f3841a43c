/**
 * `petrel pull URL|hf:OWNER/REPO/FILE.gguf[@REVISION] --name ID [--sha256 HEX] [--ctx N]
 * [--kv-type f32|f16] [--local | --remote] [--persist-to DIR] [--cache-dir DIR] [--retries N]
 * [--no-upload] [--json]`
 *
 * Downloads a real model, then uploads it like `petrel upload`. Hugging Face sources resolve to
 * `$HF_ENDPOINT/OWNER/REPO/resolve/REVISION/FILE` (HF_ENDPOINT defaults to https://huggingface.co,
 * HF_TOKEN is sent when set). The download shows a progress bar, resumes after an interruption —
 * a dropped connection is retried from the byte it stopped at, and a new run continues the
 * `.part` file of an earlier one — and is checked against the size and sha256 the source states
 * (Hugging Face's X-Linked-Size / X-Linked-Etag, a Repr-Digest header, or --sha256).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CliError, Flags, parseArgs } from "./args.ts";
import { ROOT, runAsMain, uploadModel } from "./upload.ts";
import type { ModelManifest } from "../../workers/manifest.ts";

const OPTIONS = ["name", "sha256", "ctx", "kv-type", "local", "remote", "persist-to", "cache-dir", "retries", "no-upload", "json", "config"];

export interface PullOptions {
  source: string;
  id: string;
  sha256?: string;
  nCtx?: number;
  kvType?: "f32" | "f16";
  remote?: boolean;
  persistTo?: string;
  cacheDir?: string;
  retries?: number;
  upload?: boolean;
  configPath?: string;
  /** Progress output (stderr by default). */
  progress?: (line: string, final: boolean) => void;
}

export interface PullResult {
  path: string;
  size: number;
  sha256: string;
  /** Whether the source stated the sha256 that was checked (else it was only computed). */
  verified: boolean;
  /** HTTP requests made, with the byte each started from. */
  requests: { url: string; from: number; status: number }[];
  manifest?: ModelManifest;
}

/** hf:OWNER/REPO/PATH[@REV] or an http(s) URL → the URL to fetch (https only, except loopback hosts). */
export function resolveSource(source: string, env: NodeJS.ProcessEnv = process.env): { url: string; hf: boolean } {
  if (source.startsWith("hf:")) {
    const m = source.slice(3).match(/^([^/@\s]+)\/([^/@\s]+)\/([^@\s]+\.gguf)(?:@([^\s]+))?$/);
    if (!m) throw new CliError(`'${source}' is not of the form hf:OWNER/REPO/FILE.gguf[@REVISION]`);
    const [, owner, repo, path, rev] = m;
    const endpoint = (env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
    const url = `${endpoint}/${owner}/${repo}/resolve/${encodeURIComponent(rev ?? "main")}/${path!.split("/").map(encodeURIComponent).join("/")}`;
    checkUrl(url);
    return { url, hf: true };
  }
  checkUrl(source);
  return { url: source, hf: false };
}

function checkUrl(url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliError(`'${url}' is neither a URL nor hf:OWNER/REPO/FILE.gguf`);
  }
  const loopback = u.hostname === "127.0.0.1" || u.hostname === "localhost" || u.hostname === "[::1]";
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) throw new CliError(`only https:// sources are accepted (http:// only on this machine), got ${u.protocol}//${u.host}`);
}

/** sha256 the source states: Hugging Face's X-Linked-Etag (LFS files) or RFC 9530 Repr-Digest. */
function statedSha256(headers: Headers): string | undefined {
  const linked = headers.get("x-linked-etag")?.replace(/^W\//, "").replaceAll('"', "").toLowerCase();
  if (linked && /^[0-9a-f]{64}$/.test(linked)) return linked;
  const digest = headers.get("repr-digest") ?? headers.get("digest");
  const b64 = digest?.match(/sha-256=:?([A-Za-z0-9+/=]+):?/i)?.[1];
  if (b64) {
    const hex = Buffer.from(b64, "base64").toString("hex");
    if (hex.length === 64) return hex;
  }
  return undefined;
}

interface PartMeta {
  url: string;
  size?: number;
  sha256?: string;
  etag?: string;
}

class HttpStatusError extends Error {
  constructor(readonly status: number, url: string) {
    super(`${url} answered HTTP ${status}`);
  }
}

/** Follows redirects by hand so that headers of every hop (Hugging Face puts X-Linked-* on the redirect) are seen. */
async function fetchFollowing(url: string, headers: Record<string, string>, seen: Headers): Promise<Response> {
  let current = url;
  for (let hop = 0; hop < 8; hop++) {
    const res = await fetch(current, { headers, redirect: "manual" });
    for (const name of ["x-linked-etag", "x-linked-size", "repr-digest", "digest"]) {
      const v = res.headers.get(name);
      if (v !== null && !seen.has(name)) seen.set(name, v);
    }
    if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
      await res.body?.cancel();
      const next = new URL(res.headers.get("location")!, current).href;
      // Credentials go to the source's host only, never to a CDN it redirects to.
      if (new URL(next).host !== new URL(url).host) delete headers.authorization;
      current = next;
      continue;
    }
    return res;
  }
  throw new CliError(`too many redirects from ${url}`);
}

function progressBar(done: number, total: number | undefined, started: number): string {
  const secs = Math.max((Date.now() - started) / 1000, 1e-3);
  const rate = `${(done / secs / 1e6).toFixed(1)} MB/s`;
  if (!total) return `${(done / 1e6).toFixed(1)} MB ${rate}`;
  const width = 30;
  const filled = Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${((done / total) * 100).toFixed(0).padStart(3)}% ${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB ${rate}`;
}

function defaultProgress(): (line: string, final: boolean) => void {
  let lastDecile = -1;
  return (line, final) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${final ? "\n" : ""}`);
    else {
      const pct = Number(line.match(/(\d+)%/)?.[1] ?? -1);
      const decile = Math.floor(pct / 10);
      if (final || decile > lastDecile) {
        lastDecile = decile;
        process.stderr.write(`${line}\n`);
      }
    }
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Downloads (resuming) and verifies; returns the file path and its digest. */
export async function download(opts: PullOptions): Promise<PullResult> {
  const { url, hf } = resolveSource(opts.source);
  const cacheDir = opts.cacheDir ?? join(ROOT, ".cache", "pull");
  mkdirSync(cacheDir, { recursive: true });
  const dest = join(cacheDir, `${opts.id}.gguf`);
  const part = `${dest}.part`;
  const metaPath = `${part}.json`;
  const progress = opts.progress ?? defaultProgress();
  const requests: PullResult["requests"] = [];
  const retries = opts.retries ?? 5;

  let meta: PartMeta = { url };
  if (existsSync(part) && existsSync(metaPath)) {
    const old = JSON.parse(readFileSync(metaPath, "utf8")) as PartMeta;
    if (old.url === url) meta = old;
    else rmSync(part);
  } else if (existsSync(part)) rmSync(part);
  if (opts.sha256) meta.sha256 = opts.sha256.toLowerCase();

  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const from = existsSync(part) ? statSync(part).size : 0;
    if (meta.size !== undefined && from === meta.size) break;
    const headers: Record<string, string> = { "user-agent": "petrel-pull/0.1" };
    if (from > 0) {
      headers.range = `bytes=${from}-`;
      if (meta.etag) headers["if-range"] = meta.etag;
    }
    if (hf && process.env.HF_TOKEN) headers.authorization = `Bearer ${process.env.HF_TOKEN}`;
    const seen = new Headers();
    try {
      const res = await fetchFollowing(url, headers, seen);
      requests.push({ url, from, status: res.status });
      if (res.status === 416 && meta.size !== undefined && from >= meta.size) {
        await res.body?.cancel();
        break;
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        throw new HttpStatusError(res.status, url);
      }
      let offset = from;
      if (res.status === 206) {
        const range = res.headers.get("content-range")?.match(/^bytes (\d+)-(\d+)\/(\d+|\*)$/);
        if (!range || Number(range[1]) !== from) throw new Error(`the server resumed at the wrong byte (${res.headers.get("content-range")})`);
        if (range[3] !== "*") meta.size = Number(range[3]);
      } else {
        offset = 0; // the server sent the whole file (no range support, or the file changed)
        const length = res.headers.get("content-length");
        if (length !== null) meta.size = Number(length);
      }
      const linkedSize = seen.get("x-linked-size");
      if (linkedSize !== null && meta.size !== undefined && Number(linkedSize) !== meta.size) {
        throw new CliError(`the source states ${linkedSize} bytes but serves ${meta.size}`);
      }
      const stated = statedSha256(seen) ?? statedSha256(res.headers);
      if (stated) {
        if (meta.sha256 && opts.sha256 && stated !== meta.sha256) throw new CliError(`--sha256 ${meta.sha256} differs from the source's ${stated}`);
        meta.sha256 ??= stated;
      }
      meta.etag = res.headers.get("etag") ?? meta.etag;
      writeFileSync(metaPath, JSON.stringify(meta));

      const out = createWriteStream(part, { flags: offset === 0 ? "w" : "a" });
      let done = offset;
      let lastShown = 0;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
          done += chunk.length;
          if (Date.now() - lastShown > 200) {
            lastShown = Date.now();
            progress(progressBar(done, meta.size, started), false);
          }
        }
      } finally {
        await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
      }
      progress(progressBar(done, meta.size, started), true);
      if (meta.size === undefined) meta.size = done;
      if (done < meta.size) throw new Error(`connection closed at byte ${done} of ${meta.size}`);
      break;
    } catch (e) {
      if (e instanceof CliError) throw e;
      if (e instanceof HttpStatusError && e.status < 500 && e.status !== 408 && e.status !== 429) throw new CliError(e.message);
      if (attempt >= retries) throw new CliError(`download failed after ${attempt + 1} attempts: ${(e as Error).message}`);
      const wait = Math.min(250 * 2 ** attempt, 5000);
      progress(`interrupted (${(e as Error).message}); resuming in ${wait} ms`, true);
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  const size = statSync(part).size;
  if (meta.size !== undefined && size !== meta.size) throw new CliError(`downloaded ${size} bytes, the source states ${meta.size}`);
  const sha256 = await sha256File(part);
  if (meta.sha256 && sha256 !== meta.sha256) {
    rmSync(part);
    rmSync(metaPath, { force: true });
    throw new CliError(`sha256 mismatch: the file hashes to ${sha256}, the source states ${meta.sha256}; the download was discarded`);
  }
  renameSync(part, dest);
  rmSync(metaPath, { force: true });
  return { path: dest, size, sha256, verified: meta.sha256 !== undefined, requests };
}

export async function pull(opts: PullOptions): Promise<PullResult> {
  const result = await download(opts);
  if (opts.upload !== false) {
    result.manifest = await uploadModel(result.path, new Uint8Array(readFileSync(result.path)), {
      id: opts.id,
      nCtx: opts.nCtx,
      kvType: opts.kvType,
      remote: opts.remote,
      persistTo: opts.persistTo,
      configPath: opts.configPath,
      source: opts.source,
    });
  }
  return result;
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["local", "remote", "no-upload", "json"]), OPTIONS);
  const [source, ...extra] = flags.positional;
  if (!source || extra.length > 0) throw new CliError("usage: petrel pull URL|hf:OWNER/REPO/FILE.gguf --name ID [--sha256 HEX] [--local | --remote]");
  if (flags.bool("local") && flags.bool("remote")) throw new CliError("give --local or --remote, not both");
  const sha256 = flags.string("sha256");
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) throw new CliError("--sha256 must be 64 hex digits");
  const kvType = flags.string("kv-type");
  if (kvType !== undefined && kvType !== "f32" && kvType !== "f16") throw new CliError(`--kv-type must be f32 or f16, got '${kvType}'`);
  const result = await pull({
    source,
    id: flags.requireString("name"),
    sha256,
    nCtx: flags.number("ctx", { integer: true, min: 1 }),
    kvType,
    remote: flags.bool("remote"),
    persistTo: flags.string("persist-to") && resolve(flags.string("persist-to")!),
    cacheDir: flags.string("cache-dir"),
    retries: flags.number("retries", { integer: true, min: 0 }),
    upload: !flags.bool("no-upload"),
    configPath: flags.string("config"),
  });
  if (flags.bool("json")) process.stdout.write(JSON.stringify(result) + "\n");
  else {
    process.stdout.write(`${result.path}: ${result.size} bytes, sha256 ${result.sha256} (${result.verified ? "verified against the source" : "the source states none"})\n`);
    if (result.manifest) process.stdout.write(`uploaded ${result.manifest.id} (${result.manifest.architecture} ${result.manifest.quantization})\n`);
  }
}

await runAsMain(import.meta, run, "pull");
