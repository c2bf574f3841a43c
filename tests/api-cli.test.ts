/**
 * `petrel upload` and `petrel pull` against a local R2 state directory (the one `wrangler dev`
 * serves) and a local HTTP server standing in for Hugging Face: ranges, a redirect carrying
 * X-Linked-Etag / X-Linked-Size, a dropped connection, a resumed .part file, a wrong digest.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { download, pull, resolveSource } from "../scripts/cli/pull.ts";
import { bucketName, openLocalBucket, uploadModel, validateModel } from "../scripts/cli/upload.ts";
import { manifestKey, modelKey, type ModelManifest } from "../workers/manifest.ts";

const run = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = join(ROOT, "tests/fixtures/reference/llama-Q8_0.gguf");
const bytes = new Uint8Array(readFileSync(FIXTURE));
const sha = createHash("sha256").update(bytes).digest("hex");

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "petrel-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function readBack(persistTo: string, id: string): Promise<{ file: Uint8Array | undefined; manifest: ModelManifest | undefined }> {
  const local = await openLocalBucket(persistTo, bucketName());
  try {
    const file = await local.r2.get(modelKey(id));
    const manifest = await local.r2.get(manifestKey(id));
    return {
      file: file ? new Uint8Array(await file.arrayBuffer()) : undefined,
      manifest: manifest ? ((await manifest.json()) as ModelManifest) : undefined,
    };
  } finally {
    await local.dispose();
  }
}

describe("petrel upload", () => {
  it("describes a model: architecture, quant, size, context, chat template, sha256", () => {
    const m = validateModel(bytes, { id: "llama-q8", label: FIXTURE });
    expect(m).toMatchObject({
      id: "llama-q8", file: "models/llama-q8.gguf", size: bytes.length, sha256: sha, architecture: "llama",
      quantization: "Q8_0", context_length: 512, n_ctx: 512, kv_type: "f32", n_vocab: 512, chat_template: false,
    });
  });

  it("refuses files Petrel cannot serve, with the reason", () => {
    expect(() => validateModel(new TextEncoder().encode("{}\n"), { id: "x", label: "x.json" })).toThrow(/x\.json cannot be served: GGUF: magic/);
    const vocabOnly = new Uint8Array(readFileSync(join(ROOT, "tests/fixtures/vocab/ggml-vocab-llama-spm.gguf")));
    expect(() => validateModel(vocabOnly, { id: "x", label: "vocab" })).toThrow(/missing metadata key llama\.embedding_length/);
    const truncated = bytes.subarray(0, bytes.length - 1000);
    expect(() => validateModel(truncated, { id: "x", label: "cut" })).toThrow(/cut cannot be served/);
    expect(() => validateModel(bytes, { id: "x", label: "big ctx", nCtx: 4096 })).toThrow(/n_ctx 4096 must be an integer between 1 and the model's context length 512/);
    expect(() => validateModel(bytes, { id: "bad id!", label: "id" })).toThrow(/model id 'bad id!'/);
  });

  it("puts the file and its manifest into the local bucket; the CLI refuses a bad file with exit 1", async () => {
    const persistTo = join(dir, "upload-state");
    const m = await uploadModel(FIXTURE, bytes, { id: "up-q8", persistTo, nCtx: 256, kvType: "f16" });
    expect(m).toMatchObject({ n_ctx: 256, kv_type: "f16" });
    const back = await readBack(persistTo, "up-q8");
    expect(back.manifest).toEqual(m);
    expect(createHash("sha256").update(back.file!).digest("hex")).toBe(sha);

    const bad = join(dir, "bad.gguf");
    writeFileSync(bad, "not a model");
    const err = await run(process.execPath, ["--import", "tsx", join(ROOT, "scripts/cli/upload.ts"), bad, "--name", "bad", "--persist-to", persistTo], { cwd: ROOT }).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/petrel upload: .*bad\.gguf cannot be served: GGUF: magic at offset 0/);
  });
});

/** A Hugging Face look-alike: /o/r/resolve/main/F → 302 to /cdn/F with X-Linked-* headers; /cdn/F serves ranges. */
function hfServer(opts: { dropFirstAt?: number; linkedEtag?: string } = {}) {
  const log: { path: string; range: string | undefined }[] = [];
  let dropped = false;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    log.push({ path: req.url!, range: req.headers.range });
    if (req.url === "/o/r/resolve/main/model.gguf") {
      res.writeHead(302, { location: "/cdn/model.gguf", "x-linked-etag": `"${opts.linkedEtag ?? sha}"`, "x-linked-size": String(bytes.length) });
      res.end();
      return;
    }
    if (req.url !== "/cdn/model.gguf") {
      res.writeHead(404).end();
      return;
    }
    const m = req.headers.range?.match(/^bytes=(\d+)-$/);
    const from = m ? Number(m[1]) : 0;
    const headers = { "accept-ranges": "bytes", etag: '"v1"', "content-length": String(bytes.length - from) };
    if (m) res.writeHead(206, { ...headers, "content-range": `bytes ${from}-${bytes.length - 1}/${bytes.length}` });
    else res.writeHead(200, headers);
    if (opts.dropFirstAt !== undefined && !dropped) {
      dropped = true;
      res.write(bytes.subarray(from, opts.dropFirstAt), () => res.destroy());
      return;
    }
    res.end(bytes.subarray(from));
  });
  return new Promise<{ url: string; log: typeof log; close: () => Promise<void> }>((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, log, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

describe("petrel pull", () => {
  it("resolves hf: sources against HF_ENDPOINT and accepts only https (http on loopback)", () => {
    expect(resolveSource("hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/smollm2-135m-instruct-q8_0.gguf", {})).toEqual({
      url: "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/resolve/main/smollm2-135m-instruct-q8_0.gguf",
      hf: true,
    });
    expect(resolveSource("hf:o/r/sub/m.gguf@v1.0", { HF_ENDPOINT: "http://127.0.0.1:9/" }).url).toBe("http://127.0.0.1:9/o/r/resolve/v1.0/sub/m.gguf");
    expect(() => resolveSource("http://example.com/m.gguf")).toThrow(/only https/);
    expect(() => resolveSource("hf:o/m.gguf")).toThrow(/hf:OWNER\/REPO\/FILE\.gguf/);
  });

  it("survives a dropped connection by resuming at the byte it stopped, checks size and sha256, uploads", async () => {
    const server = await hfServer({ dropFirstAt: 1_000_000 });
    const persistTo = join(dir, "pull-state");
    const prev = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = server.url;
    try {
      const lines: string[] = [];
      const result = await pull({ source: "hf:o/r/model.gguf", id: "pulled", persistTo, cacheDir: join(dir, "cache"), progress: (l) => lines.push(l) });
      expect(result).toMatchObject({ size: bytes.length, sha256: sha, verified: true });
      expect(result.requests.map((r) => [r.from, r.status])).toEqual([[0, 200], [1_000_000, 206]]);
      expect(server.log.filter((l) => l.path === "/cdn/model.gguf").map((l) => l.range)).toEqual([undefined, "bytes=1000000-"]);
      expect(lines.some((l) => /interrupted .*resuming/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/\[#{30}\] 100% 3\.6\/3\.6 MB/);
      const back = await readBack(persistTo, "pulled");
      expect(back.manifest).toMatchObject({ id: "pulled", sha256: sha, source: "hf:o/r/model.gguf", architecture: "llama" });
      expect(createHash("sha256").update(back.file!).digest("hex")).toBe(sha);
    } finally {
      process.env.HF_ENDPOINT = prev;
      await server.close();
    }
  });

  it("continues the .part file an interrupted run left", async () => {
    const server = await hfServer();
    const cacheDir = join(dir, "cache-resume");
    const url = `${server.url}/cdn/model.gguf`;
    try {
      await import("node:fs").then((fs) => fs.mkdirSync(cacheDir, { recursive: true }));
      writeFileSync(join(cacheDir, "resumed.gguf.part"), bytes.subarray(0, 123_456));
      writeFileSync(join(cacheDir, "resumed.gguf.part.json"), JSON.stringify({ url, size: bytes.length, etag: '"v1"' }));
      const result = await download({ source: url, id: "resumed", cacheDir, sha256: sha, progress: () => {} });
      expect(result.requests).toEqual([{ url, from: 123_456, status: 206 }]);
      expect(result).toMatchObject({ sha256: sha, verified: true, size: bytes.length });
      expect(createHash("sha256").update(readFileSync(result.path)).digest("hex")).toBe(sha);
    } finally {
      await server.close();
    }
  });

  it("refuses a file whose digest differs from the one the source states, and uploads nothing", async () => {
    const server = await hfServer({ linkedEtag: "0".repeat(64) });
    const persistTo = join(dir, "pull-bad");
    const prev = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = server.url;
    try {
      await expect(pull({ source: "hf:o/r/model.gguf", id: "bad-digest", persistTo, cacheDir: join(dir, "cache-bad"), progress: () => {} }))
        .rejects.toThrow(/sha256 mismatch: the file hashes to [0-9a-f]{64}, the source states 0{64}; the download was discarded/);
      const back = await readBack(persistTo, "bad-digest");
      expect(back).toEqual({ file: undefined, manifest: undefined });
    } finally {
      process.env.HF_ENDPOINT = prev;
      await server.close();
    }
  });

  it("reports a missing file without retrying", async () => {
    const server = await hfServer();
    try {
      await expect(download({ source: `${server.url}/cdn/nothing.gguf`, id: "missing", cacheDir: join(dir, "cache-404"), progress: () => {} }))
        .rejects.toThrow(/answered HTTP 404/);
      expect(server.log).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
