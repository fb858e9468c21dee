/**
 * The safetensors format (float32 tensors only): an 8-byte little-endian header length, a JSON
 * header naming each tensor's dtype, shape and byte range in the data that follows, padded
 * with spaces to a multiple of 8 bytes, then the tensors' bytes back to back, little-endian.
 * What `safetensors.torch.load_file`, `safetensors.numpy.load_file` and Hugging Face tools read.
 */

/** One tensor: its shape and row-major values. */
export interface NamedTensor {
  shape: readonly number[];
  data: Float32Array;
}

/** Free-text metadata the header carries under `__metadata__` (string values only). */
export type SafetensorsMetadata = Record<string, string>;

/** Text that is not a float32 safetensors file, with what is wrong. */
export class SafetensorsError extends Error {}

/** `tensors` (in the order given) and `metadata` as one safetensors file. */
export function encodeSafetensors(
  tensors: Readonly<Record<string, NamedTensor>>,
  metadata: SafetensorsMetadata = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new SafetensorsError(
        `${name}: shape [${t.shape}] holds ${count} values, not ${t.data.length}`,
      );
    }
    header[name] = {
      dtype: "F32",
      shape: [...t.shape],
      data_offsets: [offset, offset + 4 * count],
    };
    offset += 4 * count;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const spaces = new Uint8Array(padded).fill(0x20);
    spaces.set(json);
    json = spaces;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  const view = new DataView(out.buffer, 8 + json.length);
  let at = 0;
  for (const t of Object.values(tensors)) {
    for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i], true);
  }
  return out;
}

/** The tensors (in file order) and metadata of a float32 safetensors file. */
export function decodeSafetensors(
  bytes: Uint8Array,
): { tensors: Record<string, NamedTensor>; metadata: SafetensorsMetadata } {
  if (bytes.length < 8) throw new SafetensorsError(`${bytes.length} bytes: no header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  if (8 + length > bytes.length) {
    throw new SafetensorsError(`a header of ${length} bytes in a file of ${bytes.length}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  } catch (e) {
    throw new SafetensorsError(`the header is not JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + length;
  const entries = Object.entries(header).filter(([name]) => name !== "__metadata__") as [
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] },
  ][];
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const tensors: Record<string, NamedTensor> = {};
  let expected = 0;
  for (const [name, t] of entries) {
    if (t.dtype !== "F32") throw new SafetensorsError(`${name}: dtype ${t.dtype}, expected F32`);
    const [begin, end] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (begin !== expected || end - begin !== 4 * count || dataStart + end > bytes.length) {
      throw new SafetensorsError(
        `${name}: bytes [${begin}, ${end}) do not follow on at ${expected}`,
      );
    }
    const data = new Float32Array(count);
    const at = bytes.byteOffset + dataStart + begin;
    const tensorView = new DataView(bytes.buffer, at, end - begin);
    for (let i = 0; i < count; i++) data[i] = tensorView.getFloat32(4 * i, true);
    tensors[name] = { shape: t.shape, data };
    expected = end;
  }
  if (dataStart + expected !== bytes.length) {
    throw new SafetensorsError(
      `${bytes.length - dataStart - expected} bytes after the last tensor`,
    );
  }
  return { tensors, metadata: (header.__metadata__ ?? {}) as SafetensorsMetadata };
}
