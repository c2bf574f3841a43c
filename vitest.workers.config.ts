/**
 * Integration tests inside workerd (@cloudflare/vitest-pool-workers): the worker of wrangler.toml
 * with its Durable Objects, R2 and KV, run by miniflare. `tests/workers/**` only; the Node tests
 * are vitest.config.ts's.
 *
 * Tests get model files through the FIXTURES service binding (a Node function reading
 * tests/fixtures/ and .cache/test-models/, synthesized here before the pool starts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { parseGGUF } from "./kernels/gguf/reader.ts";
import { GGMLType } from "./kernels/gguf/types.ts";
import { synthesize } from "./scripts/lib/synth.ts";

const root = fileURLToPath(new URL(".", import.meta.url));
const FIXTURE_DIRS = { fixtures: join(root, "tests/fixtures"), models: join(root, ".cache/test-models"), moderation: join(root, "models/moderation") } as const;


/** The small models the tests serve (deterministic bytes, kept in .cache/test-models between runs). */
const TEST_MODELS = {
  /** A small llama with the real llama SPM vocabulary (32000 tokens): the chat tests' model. */
  "tiny-chat.gguf": { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, nCtx: 4096, seed: 7 },
  /** The same weights trained (in its metadata) for 2^20 positions: for the memory-budget tests. */
  "long-ctx.gguf": { nEmbd: 64, nLayer: 2, nHead: 4, nHeadKv: 2, nFf: 128, nCtx: 1 << 20, seed: 7 },
} as const;

function synthesizeTestModels(): void {
  mkdirSync(FIXTURE_DIRS.models, { recursive: true });
  const missing = Object.entries(TEST_MODELS).filter(([name]) => !existsSync(join(FIXTURE_DIRS.models, name)));
  if (missing.length === 0) return;
  const vocab = parseGGUF(new Uint8Array(readFileSync(join(root, "tests/fixtures/vocab/ggml-vocab-llama-spm.gguf"))));
  for (const [name, spec] of missing) {
    writeFileSync(join(FIXTURE_DIRS.models, name), synthesize({ arch: "llama", ...spec, type: GGMLType.Q8_0, vocab }));
  }
}

export default defineConfig({
  plugins: [
    cloudflareTest(async () => {
      synthesizeTestModels();
      const { createHash } = await import("node:crypto");
      const sha = (s: string) => createHash("sha256").update(s).digest("hex");
      return {
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            API_KEYS: JSON.stringify([
              { id: "a", hash: sha("sk-test-a"), tenant: "tenant-a" },
              { id: "b", hash: sha("sk-test-b"), tenant: "tenant-b" },
              { id: "limited", hash: sha("sk-test-limited"), tenant: "tenant-limited", rpm: 3, tpm: 1_000_000 },
              { id: "tokens", hash: sha("sk-test-tokens"), tenant: "tenant-tokens", rpm: 1000, tpm: 40 },
              { id: "revoke", hash: sha("sk-test-revoke"), tenant: "tenant-revoke" },
              { id: "moderator", hash: sha("sk-test-moderator"), tenant: "moderator" },
            ]),
            // Moderation is off for the test tenants except "moderator" (the default policy: rules +
            // classifier); tests/workers/moderation-*.test.ts set their tenants' policies at run time.
            MODERATION_POLICIES: JSON.stringify({ "*": { checks: { rules: false, classifier: false }, output: { enabled: false } }, moderator: {} }),
            // The key a policy's external endpoint or judge uses to call this worker back (as tenant "moderator").
            MODERATION_SELF_KEY: "sk-test-moderator",
            ADMIN_KEY_HASHES: sha("sk-test-admin"),
            MAX_BODY_BYTES: "65536",
            CORS_ORIGINS: "https://app.example,https://other.example",
            PREFILL_CHUNK: "16",
            // PETREL_BACKEND=js runs the suite on the TypeScript reference backend instead of wasm.
            ...(process.env.PETREL_BACKEND && { BACKEND: process.env.PETREL_BACKEND }),
          },
          serviceBindings: {
            FIXTURES: async (request: Request) => {
              const url = new URL(request.url);
              const [dir, ...rest] = url.pathname.slice(1).split("/");
              const base = FIXTURE_DIRS[dir as keyof typeof FIXTURE_DIRS];
              const rel = normalize(rest.join("/"));
              if (!base || rel.startsWith("..")) return new Response("not found", { status: 404 });
              try {
                return new Response(await readFile(join(base, rel)));
              } catch {
                return new Response("not found", { status: 404 });
              }
            },
          },
        },
      };
    }),
  ],
  test: {
    include: ["tests/workers/**/*.test.ts"],
    // The worker and the objects log a JSON line per request and turn: shown for failing tests only.
    silent: "passed-only",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
