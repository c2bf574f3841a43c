/// <reference types="@webgpu/types" />
/**
 * Compiled kernels and bind group layouts, shared by every model on a device. Each kernel has an
 * explicit layout (not "auto"), so one bind group serves several kernels of the same signature
 * (matvec and matmat over the same weights).
 */
import { SHADER_STAGE_COMPUTE } from "./constants.ts";

/** How a kernel sees each binding, in binding order. */
export type Binding = "read" | "write" | "uniform";

export class Pipelines {
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();

  constructor(readonly device: GPUDevice) {}

  layout(bindings: readonly Binding[]): GPUBindGroupLayout {
    const key = bindings.join(",");
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.device.createBindGroupLayout({
        label: key,
        entries: bindings.map((b, binding) => ({
          binding,
          visibility: SHADER_STAGE_COMPUTE,
          buffer: { type: b === "uniform" ? "uniform" : b === "read" ? "read-only-storage" : "storage" },
        })),
      });
      this.layouts.set(key, layout);
    }
    return layout;
  }

  /** The kernel named `key`, compiled from `code()` on first use. */
  pipeline(key: string, bindings: readonly Binding[], code: () => string): Promise<GPUComputePipeline> {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ label: key, code: code() });
      pipeline = this.device
        .createComputePipelineAsync({
          label: key,
          layout: this.device.createPipelineLayout({ bindGroupLayouts: [this.layout(bindings)] }),
          compute: { module, entryPoint: "main" },
        })
        .catch(async (e: Error) => {
          const info = await module.getCompilationInfo();
          const messages = info.messages.map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`).join("\n");
          throw new Error(`WebGPU kernel ${key} failed to compile: ${e.message}${messages ? `\n${messages}` : ""}`);
        });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  bindGroup(bindings: readonly Binding[], buffers: readonly GPUBuffer[], label?: string): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: this.layout(bindings),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  }
}

const perDevice = new WeakMap<GPUDevice, Pipelines>();

export function pipelinesOf(device: GPUDevice): Pipelines {
  let p = perDevice.get(device);
  if (!p) perDevice.set(device, (p = new Pipelines(device)));
  return p;
}
