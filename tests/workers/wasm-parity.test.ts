/**
 * The wasm backend inside workerd: petrel.wasm bundled as a compiled module (no compiling from
 * bytes at run time), every reference fixture by the README's rule, in the worker and in a
 * Durable Object. The Node side is tests/wasm-parity.test.ts.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { loadModel } from "../../kernels/model/model.ts";
import petrelWasm from "../../kernels/wasm/build/petrel.wasm";
import { createWasmBackendFromModule } from "../../kernels/wasm/wasm-backend.ts";
import { type ReferenceFile, checkRun, isQuantized, runFixture } from "../helpers/parity-rule.ts";
import { fixtureBytes, testEnv } from "./helpers.ts";

async function fixture(name: string): Promise<Uint8Array> {
  return fixtureBytes(`fixtures/reference/${name}`);
}

/** Runs both runs of one fixture on a fresh wasm backend; null when they match. */
async function check(reference: ReferenceFile): Promise<string | null> {
  const model = loadModel(parseGGUF(await fixture(reference.model)), await createWasmBackendFromModule(petrelWasm));
  for (const run of reference.runs) {
    const why = checkRun(run, runFixture(model, run), "llama", isQuantized(reference.model) ? 0.15 : 1e-2);
    if (why) return `${reference.model}: ${why}`;
  }
  return null;
}

async function references(): Promise<ReferenceFile[]> {
  const manifest = JSON.parse(new TextDecoder().decode(await fixture("manifest.json"))) as { files: Record<string, unknown> };
  const names = Object.keys(manifest.files).filter((f) => f.endsWith(".gguf")).sort();
  return Promise.all(names.map(async (name) => JSON.parse(new TextDecoder().decode(await fixture(name.replace(/\.gguf$/, ".json")))) as ReferenceFile));
}

describe("wasm backend in workerd", () => {
  it("matches llama.cpp on every reference fixture", async () => {
    const refs = await references();
    expect(refs).toHaveLength(15);
    const failures = [];
    for (const ref of refs) failures.push(await check(ref));
    expect(failures.filter(Boolean)).toEqual([]);
  });

  it("runs inside a Durable Object", async () => {
    const [ref] = (await references()).filter((r) => r.model === "llama-Q4_K_M.gguf");
    const stub = testEnv.SESSIONS.get(testEnv.SESSIONS.idFromName("wasm-parity"));
    expect(await runInDurableObject(stub, () => check(ref!))).toBeNull();
  });
});
