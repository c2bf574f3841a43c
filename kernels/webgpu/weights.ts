/// <reference types="@webgpu/types" />
/**
 * Weight matrices on the GPU, in their GGUF block format. A matrix larger than one storage
 * binding may be (128 MiB in compatibility mode) is split into row ranges, one buffer each; the
 * kernels run once per range.
 */
import { rowBytes, typeName, type GGMLType } from "../gguf/types.ts";
import { storageWithData } from "./buffers.ts";
import { isWebGpuWeightType } from "./wgsl/blocks.ts";

export interface RowRange {
  buffer: GPUBuffer;
  /** First row of the matrix held by this buffer. */
  rowOffset: number;
  rows: number;
}

export interface GpuMatrix {
  name: string;
  type: GGMLType;
  rows: number;
  cols: number;
  rowBytes: number;
  ranges: RowRange[];
  bytes: number;
}

/** `maxRangeBytes` caps a buffer below the device's binding limit (tests use it to force splits). */
export function uploadMatrix(device: GPUDevice, name: string, type: GGMLType, rows: number, cols: number, bytes: Uint8Array, maxRangeBytes = Infinity): GpuMatrix {
  if (!isWebGpuWeightType(type)) throw new RangeError(`${name}: the WebGPU backend cannot read ${typeName(type)} weights`);
  if (cols % 4 !== 0) throw new RangeError(`${name}: rows of ${cols} elements; the WebGPU kernels need a multiple of 4`);
  const bytesPerRow = rowBytes(type, cols);
  if (bytes.length !== bytesPerRow * rows) throw new RangeError(`${name}: expected ${bytesPerRow * rows} bytes, got ${bytes.length}`);
  // Byte offsets in a binding are u32 in the kernels; − 4 leaves room for padding to whole words.
  const maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize, 2 ** 32, maxRangeBytes) - 4;
  const rowsPerRange = Math.floor(maxBinding / bytesPerRow);
  if (rowsPerRange === 0) throw new RangeError(`${name}: one row (${bytesPerRow} bytes) exceeds the device's storage binding size`);
  const ranges: RowRange[] = [];
  for (let r = 0; r < rows; r += rowsPerRange) {
    const n = Math.min(rowsPerRange, rows - r);
    const buffer = storageWithData(device, `${name}[${r}..${r + n})`, bytes.subarray(r * bytesPerRow, (r + n) * bytesPerRow));
    ranges.push({ buffer, rowOffset: r, rows: n });
  }
  return { name, type, rows, cols, rowBytes: bytesPerRow, ranges, bytes: bytes.length };
}
