/** `import mod from "x.wasm"`: wrangler and miniflare bundle .wasm files as compiled modules. */
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
