// The petrel.wasm entry: every export of the kernel module. All pointers are byte offsets into
// the imported memory, which the JS side manages; the module allocates nothing itself.
export { activationBytes, matmul, prepareActivations, supportsType } from "./matmul";
export { rmsNorm } from "./norm";
export { rope, ropeTable } from "./rope";
export { swiglu } from "./swiglu";
export { attention, attentionScratchBytes, storeKV } from "./attention";

/** First byte of linear memory not used by the module's own data. */
export function heapBase(): usize {
  return __heap_base;
}
