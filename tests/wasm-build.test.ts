import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The built modules are committed (workerd imports them as CompiledWasm and nothing builds at
// deploy time); this test fails when they are older than kernels/wasm/assembly/: `npm run build:wasm`.
describe("kernels/wasm/build is what the AssemblyScript sources compile to", () => {
  const root = new URL("../", import.meta.url).pathname;
  const asc = join(root, "node_modules/.bin/asc");
  for (const [target, file] of [["release", "petrel.wasm"], ["shared", "petrel-shared.wasm"]] as const) {
    it(`${file} (target ${target})`, () => {
      const dir = mkdtempSync(join(tmpdir(), "petrel-wasm-"));
      try {
        const out = join(dir, file);
        execFileSync(asc, ["--config", join(root, "kernels/wasm/asconfig.json"), "--target", target, "--outFile", out]);
        const committed = readFileSync(join(root, "kernels/wasm/build", file));
        expect(Buffer.compare(readFileSync(out), committed), "run `npm run build:wasm`").toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
