/**
 * Minimal ONNX writer: encodes a ModelProto (onnx/onnx.proto, proto2) with our own protobuf
 * writer. Covers what a small classifier needs — float32 initializers stored as raw_data,
 * nodes with optional int/float/string attributes, typed graph inputs/outputs with fixed or
 * symbolic dimensions, opset imports and metadata_props.
 *
 * Field numbers (onnx.proto):
 *   ModelProto:  ir_version=1 producer_name=2 producer_version=3 domain=4 model_version=5
 *                doc_string=6 graph=7 opset_import=8 metadata_props=14
 *   OperatorSetIdProto: domain=1 version=2
 *   GraphProto:  node=1 name=2 initializer=5 doc_string=10 input=11 output=12
 *   NodeProto:   input=1 output=2 name=3 op_type=4 attribute=5 doc_string=6 domain=7
 *   AttributeProto: name=1 f=2 i=3 s=4 ints=8 type=20 (FLOAT=1 INT=2 STRING=3 INTS=7)
 *   TensorProto: dims=1 data_type=2 name=8 raw_data=9 (FLOAT=1, little-endian IEEE 754)
 *   ValueInfoProto: name=1 type=2 doc_string=3
 *   TypeProto: tensor_type=1; TypeProto.Tensor: elem_type=1 shape=2
 *   TensorShapeProto: dim=1; Dimension: dim_value=1 dim_param=2
 *   StringStringEntryProto: key=1 value=2
 */
import { ProtoWriter } from "./protobuf.ts";

export const ONNX_FLOAT = 1;

export type Dim = number | string; // fixed size, or a symbolic name such as "batch"

export interface OnnxTensor {
  name: string;
  dims: number[];
  /** float32 values, row-major. */
  data: Float32Array;
}

export interface OnnxValueInfo {
  name: string;
  elemType?: number; // default FLOAT
  shape: Dim[];
  doc?: string;
}

export type OnnxAttribute = { name: string } & ({ f: number } | { i: number } | { s: string } | { ints: number[] });

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: OnnxAttribute[];
}

export interface OnnxModel {
  irVersion: number;
  opset: { domain?: string; version: number }[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  doc?: string;
  graph: {
    name: string;
    nodes: OnnxNode[];
    initializers: OnnxTensor[];
    inputs: OnnxValueInfo[];
    outputs: OnnxValueInfo[];
    doc?: string;
  };
  metadata?: Record<string, string>;
}

function writeTensor(w: ProtoWriter, t: OnnxTensor): void {
  const count = t.dims.reduce((a, b) => a * b, 1);
  if (count !== t.data.length) throw new Error(`tensor ${t.name}: dims ${t.dims} need ${count} values, got ${t.data.length}`);
  for (const d of t.dims) w.int(1, d); // repeated int64 dims (proto2: unpacked)
  w.int(2, ONNX_FLOAT);
  w.string(8, t.name);
  const raw = new Uint8Array(t.data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < t.data.length; i++) view.setFloat32(i * 4, t.data[i]!, true);
  w.bytes(9, raw);
}

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType ?? ONNX_FLOAT);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => {
            if (typeof d === "number") dim.int(1, d);
            else dim.string(2, d);
          });
        }
      });
    }),
  );
  if (v.doc) w.string(3, v.doc);
}

function writeNode(w: ProtoWriter, n: OnnxNode): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes ?? []) {
    w.message(5, (attr) => {
      attr.string(1, a.name);
      if ("f" in a) attr.float(2, a.f).int(20, 1);
      else if ("i" in a) attr.int(3, a.i).int(20, 2);
      else if ("s" in a) attr.string(4, a.s).int(20, 3);
      else {
        for (const v of a.ints) attr.int(8, v); // repeated int64 (proto2: unpacked)
        attr.int(20, 7);
      }
    });
  }
  if (n.domain) w.string(7, n.domain);
}

/** Serialize a model to the bytes of an .onnx file. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion);
  if (m.producerName) w.string(2, m.producerName);
  if (m.producerVersion) w.string(3, m.producerVersion);
  if (m.domain) w.string(4, m.domain);
  if (m.modelVersion !== undefined) w.int(5, m.modelVersion);
  if (m.doc) w.string(6, m.doc);
  w.message(7, (g) => {
    for (const n of m.graph.nodes) g.message(1, (nw) => writeNode(nw, n));
    g.string(2, m.graph.name);
    for (const t of m.graph.initializers) g.message(5, (tw) => writeTensor(tw, t));
    if (m.graph.doc) g.string(10, m.graph.doc);
    for (const i of m.graph.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
    for (const o of m.graph.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
  });
  for (const o of m.opset) {
    w.message(8, (ow) => {
      if (o.domain) ow.string(1, o.domain);
      ow.int(2, o.version);
    });
  }
  for (const [key, value] of Object.entries(m.metadata ?? {})) {
    w.message(14, (e) => e.string(1, key).string(2, value));
  }
  return w.finish();
}

/**
 * The moderation classifier graph (see kernels/moderation/README.md, "Classifier contract"):
 *   features float[batch, D] → MatMul(W[D, C]) → Add(b[C]) → Sigmoid → scores float[batch, C].
 */
export function linearSigmoidModel(opts: {
  weights: Float32Array; // row-major [D, C]
  bias: Float32Array; // [C]
  inputDim: number;
  outputDim: number;
  metadata: Record<string, string>;
  doc?: string;
  producerVersion?: string;
}): Uint8Array {
  const { inputDim: D, outputDim: C } = opts;
  return encodeOnnxModel({
    irVersion: 8,
    opset: [{ version: 17 }],
    producerName: "petrel-moderation-train",
    producerVersion: opts.producerVersion ?? "1",
    domain: "dev.petrel.moderation",
    modelVersion: 1,
    doc: opts.doc,
    graph: {
      name: "moderation_linear",
      nodes: [
        { opType: "MatMul", inputs: ["features", "W"], outputs: ["logits_mm"], name: "matmul" },
        { opType: "Add", inputs: ["logits_mm", "b"], outputs: ["logits"], name: "add_bias" },
        { opType: "Sigmoid", inputs: ["logits"], outputs: ["scores"], name: "sigmoid" },
      ],
      initializers: [
        { name: "W", dims: [D, C], data: opts.weights },
        { name: "b", dims: [C], data: opts.bias },
      ],
      inputs: [{ name: "features", shape: ["batch", D], doc: "hashed n-gram features (kernels/moderation/features.ts)" }],
      outputs: [{ name: "scores", shape: ["batch", C], doc: "one probability per category, in metadata order" }],
    },
    metadata: opts.metadata,
  });
}

/**
 * The shipped moderation classifier graph (kernels/moderation/README.md, "Classifier contract"):
 *   heads  = Sigmoid(features · W + b)            [batch, C]   p(category | harmful)
 *   gate   = Sigmoid(features · Wg + bg)          [batch, 1]   p(harmful)
 *   scores = gate · heads / max(ReduceMax(heads, axis 1), 1e-30)   [batch, C]
 */
export function gatedLinearModel(opts: {
  weights: Float32Array; // [D, C]
  bias: Float32Array; // [C]
  gateWeights: Float32Array; // [D, 1]
  gateBias: Float32Array; // [1]
  inputDim: number;
  outputDim: number;
  metadata: Record<string, string>;
  doc?: string;
}): Uint8Array {
  const { inputDim: D, outputDim: C } = opts;
  return encodeOnnxModel({
    irVersion: 8,
    opset: [{ version: 17 }],
    producerName: "petrel-moderation-train",
    producerVersion: "1",
    domain: "dev.petrel.moderation",
    modelVersion: 1,
    doc: opts.doc,
    graph: {
      name: "moderation_gated_linear",
      nodes: [
        { opType: "MatMul", inputs: ["features", "W"], outputs: ["heads_mm"], name: "heads_matmul" },
        { opType: "Add", inputs: ["heads_mm", "b"], outputs: ["heads_logits"], name: "heads_bias" },
        { opType: "Sigmoid", inputs: ["heads_logits"], outputs: ["heads"], name: "heads_sigmoid" },
        { opType: "MatMul", inputs: ["features", "Wg"], outputs: ["gate_mm"], name: "gate_matmul" },
        { opType: "Add", inputs: ["gate_mm", "bg"], outputs: ["gate_logit"], name: "gate_bias" },
        { opType: "Sigmoid", inputs: ["gate_logit"], outputs: ["gate"], name: "gate_sigmoid" },
        { opType: "ReduceMax", inputs: ["heads"], outputs: ["heads_max_raw"], name: "heads_max", attributes: [{ name: "axes", ints: [1] }, { name: "keepdims", i: 1 }] },
        { opType: "Max", inputs: ["heads_max_raw", "tiny"], outputs: ["heads_max"], name: "heads_max_floor" },
        { opType: "Div", inputs: ["heads", "heads_max"], outputs: ["heads_rel"], name: "heads_relative" },
        { opType: "Mul", inputs: ["heads_rel", "gate"], outputs: ["scores"], name: "gated_scores" },
      ],
      initializers: [
        { name: "W", dims: [D, C], data: opts.weights },
        { name: "b", dims: [C], data: opts.bias },
        { name: "Wg", dims: [D, 1], data: opts.gateWeights },
        { name: "bg", dims: [1], data: opts.gateBias },
        { name: "tiny", dims: [1], data: Float32Array.of(1e-30) },
      ],
      inputs: [{ name: "features", shape: ["batch", D], doc: "hashed n-gram features (kernels/moderation/features.ts)" }],
      outputs: [{ name: "scores", shape: ["batch", C], doc: "one probability per category, in metadata order" }],
    },
    metadata: opts.metadata,
  });
}
