/// <reference types="@webgpu/types" />
/** Creating GPU buffers from host data, and the uniforms of the kernels (all 32-bit fields). */
import { f32Bits } from "../quant/half.ts";
import { BufferUsage } from "./constants.ts";

/** A storage buffer holding `bytes` (padded to a multiple of 4, as WebGPU requires). */
export function storageWithData(device: GPUDevice, label: string, bytes: Uint8Array, extraUsage = 0): GPUBuffer {
  const size = Math.max(4, Math.ceil(bytes.length / 4) * 4);
  const buffer = device.createBuffer({ label, size, usage: BufferUsage.STORAGE | extraUsage, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(bytes);
  buffer.unmap();
  return buffer;
}

export function storageFromFloats(device: GPUDevice, label: string, values: Float32Array): GPUBuffer {
  return storageWithData(device, label, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/** An uninitialised storage buffer of `bytes` (activations, caches). */
export function storage(device: GPUDevice, label: string, bytes: number): GPUBuffer {
  return device.createBuffer({
    label,
    size: Math.max(16, Math.ceil(bytes / 4) * 4),
    usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
  });
}

/** A field of a uniform struct: a u32, or an f32 given as { f32: x }. */
export type UniformField = number | { f32: number };

/** A constant uniform struct (fields in declaration order, padded to 16 bytes). */
export function uniform(device: GPUDevice, label: string, fields: readonly UniformField[]): GPUBuffer {
  const words = new Uint32Array(Math.ceil(fields.length / 4) * 4);
  fields.forEach((f, i) => (words[i] = typeof f === "number" ? f : f32Bits(f.f32)));
  const buffer = device.createBuffer({ label, size: words.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST, mappedAtCreation: true });
  new Uint32Array(buffer.getMappedRange()).set(words);
  buffer.unmap();
  return buffer;
}

/** Workgroup counts for `groups` workgroups of a flat kernel: 2-D beyond the 65535 limit of one dimension. */
export function flatGroups(groups: number): [number, number] {
  const max = 65535;
  return groups <= max ? [Math.max(groups, 1), 1] : [max, Math.ceil(groups / max)];
}
