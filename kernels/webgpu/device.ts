/// <reference types="@webgpu/types" />
/**
 * Finds a WebGPU adapter and opens a device on it, in a browser (navigator.gpu) or in Node (Dawn).
 * The adapters tried, in order, are explicit; when none fits, the error lists every attempt and
 * its outcome. Nothing here falls back to a CPU backend.
 */
import type { DawnBackend } from "./node-gpu.ts";

/** The prefill matmul's weight tiles: f16 (arithmetic stays f32) needs the adapter's `shader-f16`. */
export type Precision = "f32" | "f16";
export type FeatureLevel = "core" | "compatibility";

export interface DeviceOptions {
  /** The WebGPU entry point (e.g. navigator.gpu). Default: the browser's, else Dawn's in Node. */
  gpu?: GPU;
  /** Node only: Dawn backends to try, in order. Default: Dawn's default (Vulkan…), then OpenGL. */
  dawnBackends?: DawnBackend[];
  /** Feature levels to ask each entry point for, in order. Default: core, then compatibility. */
  featureLevels?: FeatureLevel[];
  /** "f16" takes only adapters with shader-f16; "f32" never uses it. Default "auto": f16 where offered
   *  (both meet the fixture rule; wgsl/matmul.ts). */
  precision?: Precision | "auto";
}

export interface WebGpuDevice {
  readonly device: GPUDevice;
  /** Which entry point, feature level and adapter were chosen (for logs and bench reports). */
  readonly description: string;
  readonly precision: Precision;
  /** The adapter emulates a GPU on the CPU (llvmpipe, lavapipe, SwiftShader): kernels pick
   *  shapes with fewer invocations and barriers, which such adapters run far faster. */
  readonly software: boolean;
  /** Held for the device's lifetime: Dawn tears its instance down when this is collected. */
  readonly entryPoint: GPU;
  destroy(): void;
}

export class WebGpuUnavailableError extends Error {
  override name = "WebGpuUnavailableError";
}

interface EntryPoint {
  label: string;
  open: () => Promise<GPU>;
}

function browserGpu(): GPU | undefined {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
}

function entryPoints(opts: DeviceOptions): EntryPoint[] {
  if (opts.gpu) return [{ label: "the given GPU", open: async () => opts.gpu! }];
  const gpu = browserGpu();
  if (gpu) return [{ label: "navigator.gpu", open: async () => gpu }];
  if (typeof process === "undefined" || !process.versions?.node) return [];
  return (opts.dawnBackends ?? ["default", "opengl"]).map((backend) => ({
    label: `Dawn backend=${backend}`,
    open: async () => (await import("./node-gpu.ts")).dawnGpu(backend),
  }));
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i;

function describeAdapter(adapter: GPUAdapter): string {
  const { vendor, architecture, device, description } = adapter.info;
  return [vendor, architecture, device, description].filter((s) => s).join(" ") || "unnamed adapter";
}

export async function requestWebGpuDevice(opts: DeviceOptions = {}): Promise<WebGpuDevice> {
  const wanted = opts.precision ?? "auto";
  const attempts: string[] = [];
  const entries = entryPoints(opts);
  if (entries.length === 0) attempts.push("no navigator.gpu (WebGPU disabled, or the page is not a secure context) and not in Node");
  for (const entry of entries) {
    let gpu: GPU;
    try {
      gpu = await entry.open();
    } catch (e) {
      attempts.push(`${entry.label}: ${(e as Error).message}`);
      continue;
    }
    for (const featureLevel of opts.featureLevels ?? ["core", "compatibility"]) {
      const where = `${entry.label} featureLevel=${featureLevel}`;
      const adapter = await gpu.requestAdapter({ featureLevel, powerPreference: "high-performance" }).catch((e: Error) => {
        attempts.push(`${where}: ${e.message}`);
        return null;
      });
      if (!adapter) {
        attempts.push(`${where}: no adapter`);
        continue;
      }
      const hasF16 = adapter.features.has("shader-f16");
      if (wanted === "f16" && !hasF16) {
        attempts.push(`${where}: ${describeAdapter(adapter)} has no shader-f16`);
        continue;
      }
      const precision: Precision = wanted === "f32" || !hasF16 ? "f32" : "f16";
      const device = await adapter.requestDevice({
        requiredFeatures: precision === "f16" ? ["shader-f16"] : [],
        // Weights are split to fit one binding, so the larger the binding the fewer the splits.
        requiredLimits: {
          maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
          maxBufferSize: adapter.limits.maxBufferSize,
        },
      });
      return {
        device,
        description: `${where}: ${describeAdapter(adapter)} (${precision})`,
        precision,
        software: adapter.info.isFallbackAdapter || SOFTWARE_ADAPTER.test(describeAdapter(adapter)),
        entryPoint: gpu,
        destroy: () => device.destroy(),
      };
    }
  }
  throw new WebGpuUnavailableError(`no usable WebGPU adapter${wanted === "f16" ? " with shader-f16" : ""}; tried:\n  ${attempts.join("\n  ")}`);
}
