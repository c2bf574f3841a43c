/**
 * Bundles page.ts (and the WebGPU backend it imports) for the browser with esbuild. The page
 * imports only browser-safe modules (the fixture rule from tests/helpers/parity-rule.ts, not the
 * Node loader of fixture files).
 */
import { build } from "esbuild";

/** The page script as an ES module (source text). */
export async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [new URL("./page.ts", import.meta.url).pathname],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    // Dawn's Node addon: device.ts imports it only where there is no navigator.gpu.
    external: ["webgpu"],
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}
