/** SHA-256, the one hash of the project (cache keys, file hashes, checkpoints, images). */

/** SHA-256 of `bytes`, raw (32 bytes). */
export async function sha256Bytes(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/** SHA-256 of bytes or text (UTF-8), as lowercase hex. */
export async function sha256Hex(data: Uint8Array | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return Array.from(await sha256Bytes(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}
