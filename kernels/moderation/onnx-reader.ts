/**
 * A minimal, dependency-free ONNX (protobuf) reader: enough to read a model's metadata_props,
 * its graph input/output names and shapes, and float32 initializers. Used to pick up the
 * classifier's categories/thresholds/featurizer from the .onnx bytes (ORT's JS API does not
 * expose metadata_props) and by the TS reference classifier. Field numbers: see
 * scripts/moderation/onnx-writer.ts.
 */

export interface OnnxValueInfoView {
  name: string;
  elemType: number;
  shape: (number | string)[];
}

export interface OnnxInitializerView {
  name: string;
  dims: number[];
  dataType: number;
  /** float32 data when dataType is FLOAT (raw_data or float_data) */
  floats?: Float32Array;
}

export interface OnnxModelView {
  irVersion: number;
  opset: { domain: string; version: number }[];
  producerName: string;
  metadata: Record<string, string>;
  inputs: OnnxValueInfoView[];
  outputs: OnnxValueInfoView[];
  initializers: OnnxInitializerView[];
  nodes: { opType: string; inputs: string[]; outputs: string[] }[];
}

type Field = { field: number; wire: number; int?: bigint; bytes?: Uint8Array; fixed?: DataView };

const utf8 = new TextDecoder();

function* fields(buf: Uint8Array): Generator<Field> {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error("onnx: truncated varint");
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error("onnx: varint too long");
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    switch (wire) {
      case 0:
        yield { field, wire, int: varint() };
        break;
      case 1:
        if (pos + 8 > buf.length) throw new Error("onnx: truncated fixed64");
        yield { field, wire, fixed: new DataView(buf.buffer, buf.byteOffset + pos, 8) };
        pos += 8;
        break;
      case 2: {
        const len = Number(varint());
        if (pos + len > buf.length) throw new Error("onnx: truncated length-delimited field");
        yield { field, wire, bytes: buf.subarray(pos, pos + len) };
        pos += len;
        break;
      }
      case 5:
        if (pos + 4 > buf.length) throw new Error("onnx: truncated fixed32");
        yield { field, wire, fixed: new DataView(buf.buffer, buf.byteOffset + pos, 4) };
        pos += 4;
        break;
      default:
        throw new Error(`onnx: unsupported wire type ${wire}`);
    }
  }
}

/** Values of a repeated int64 field, packed or not. */
function ints(f: Field): number[] {
  if (f.int !== undefined) return [Number(BigInt.asIntN(64, f.int))];
  const out: number[] = [];
  const b = f.bytes!;
  let pos = 0;
  while (pos < b.length) {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const x = b[pos++]!;
      result |= BigInt(x & 0x7f) << shift;
      if ((x & 0x80) === 0) break;
      shift += 7n;
    }
    out.push(Number(BigInt.asIntN(64, result)));
  }
  return out;
}

const str = (f: Field) => utf8.decode(f.bytes!);

function readValueInfo(buf: Uint8Array): OnnxValueInfoView {
  const v: OnnxValueInfoView = { name: "", elemType: 0, shape: [] };
  for (const f of fields(buf)) {
    if (f.field === 1) v.name = str(f);
    else if (f.field === 2) {
      for (const t of fields(f.bytes!)) {
        if (t.field !== 1) continue; // tensor_type
        for (const tt of fields(t.bytes!)) {
          if (tt.field === 1) v.elemType = Number(tt.int);
          else if (tt.field === 2) {
            for (const d of fields(tt.bytes!)) {
              if (d.field !== 1) continue;
              let dim: number | string = "?";
              for (const x of fields(d.bytes!)) {
                if (x.field === 1) dim = Number(x.int);
                else if (x.field === 2) dim = str(x);
              }
              v.shape.push(dim);
            }
          }
        }
      }
    }
  }
  return v;
}

function readTensor(buf: Uint8Array): OnnxInitializerView {
  const t: OnnxInitializerView = { name: "", dims: [], dataType: 0 };
  let raw: Uint8Array | undefined;
  const floatData: number[] = [];
  for (const f of fields(buf)) {
    if (f.field === 1) t.dims.push(...ints(f));
    else if (f.field === 2) t.dataType = Number(f.int);
    else if (f.field === 8) t.name = str(f);
    else if (f.field === 9) raw = f.bytes;
    else if (f.field === 4) {
      if (f.fixed) floatData.push(f.fixed.getFloat32(0, true));
      else {
        const b = f.bytes!;
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        for (let i = 0; i + 4 <= b.length; i += 4) floatData.push(dv.getFloat32(i, true));
      }
    }
  }
  if (t.dataType === 1) {
    if (raw) {
      const out = new Float32Array(raw.length / 4);
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
      t.floats = out;
    } else t.floats = Float32Array.from(floatData);
  }
  return t;
}

/** Parse the parts of an ONNX model this module needs. */
export function readOnnxModel(bytes: Uint8Array | ArrayBuffer): OnnxModelView {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const m: OnnxModelView = { irVersion: 0, opset: [], producerName: "", metadata: {}, inputs: [], outputs: [], initializers: [], nodes: [] };
  for (const f of fields(buf)) {
    switch (f.field) {
      case 1:
        m.irVersion = Number(f.int);
        break;
      case 2:
        m.producerName = str(f);
        break;
      case 8: {
        const o = { domain: "", version: 0 };
        for (const x of fields(f.bytes!)) {
          if (x.field === 1) o.domain = str(x);
          else if (x.field === 2) o.version = Number(x.int);
        }
        m.opset.push(o);
        break;
      }
      case 14: {
        let key = "";
        let value = "";
        for (const x of fields(f.bytes!)) {
          if (x.field === 1) key = str(x);
          else if (x.field === 2) value = str(x);
        }
        m.metadata[key] = value;
        break;
      }
      case 7:
        for (const g of fields(f.bytes!)) {
          if (g.field === 1) {
            const n = { opType: "", inputs: [] as string[], outputs: [] as string[] };
            for (const x of fields(g.bytes!)) {
              if (x.field === 1) n.inputs.push(str(x));
              else if (x.field === 2) n.outputs.push(str(x));
              else if (x.field === 4) n.opType = str(x);
            }
            m.nodes.push(n);
          } else if (g.field === 5) m.initializers.push(readTensor(g.bytes!));
          else if (g.field === 11) m.inputs.push(readValueInfo(g.bytes!));
          else if (g.field === 12) m.outputs.push(readValueInfo(g.bytes!));
        }
        break;
    }
  }
  return m;
}
