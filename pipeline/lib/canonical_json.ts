/** Canonical JSON, the text that cache keys hash. */

/**
 * JSON with object keys sorted at every level and no whitespace; undefined object values
 * left out and undefined list items written as null, as JSON.stringify does.
 *
 * @example canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }) // '{"a":[2,{"c":4,"d":3}],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) {
    return `[${value.map((item) => item === undefined ? "null" : canonicalJson(item)).join(",")}]`;
  }
  if (value !== null && typeof value === "object") {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
    return `{${
      keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "null";
}
