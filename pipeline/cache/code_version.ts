/**
 * The code version of a stage: a hash of the source it runs, found by following imports.
 *
 * From each entry module the walk follows local specifiers (those starting `./` or `../`) of
 *
 * - static imports: `import x from "..."`, `import { a } from "..."`, `import "..."`;
 * - re-exports: `export * from "..."`, `export { a } from "..."`;
 * - dynamic imports with a literal specifier: `import("./x.ts")`.
 *
 * Type-only imports and re-exports (`import type`, `export type`, or braces in which every
 * name is marked `type`) are erased before the code runs, so they are not followed. A dynamic
 * import with a computed specifier cannot be followed either: code that loads a module that
 * way must name it as an entry of its own (the data stage names its task's module).
 *
 * Bare specifiers (`@tensorflow/tfjs`, `npm:yaml@2.9.1`) are not read from disk. Each one
 * adds the version that deno.json's import map pins it to and, where deno.lock lists the
 * package, the integrity hashes of the package and everything it depends on. Bumping a
 * dependency that a stage does not import leaves that stage's key alone. `node:` built-ins
 * add nothing.
 *
 * Results are cached for the life of the process: a file edited after its first read is not
 * read again.
 */
import { sha256Hex } from "../lib/hash.ts";
import { PROJECT_URL } from "../lib/paths.ts";

/** The repository root: paths in a code version are relative to it. */
const ROOT = PROJECT_URL;

/** One module specifier found in a source file. */
export interface ModuleImport {
  specifier: string;
  /** `import("...")` rather than a static import or re-export. */
  dynamic: boolean;
  /** Erased before the code runs: `import type`, `export type`, `{ type A }`. */
  typeOnly: boolean;
}

/** What a set of entry modules runs. */
export interface CodeClosure {
  /** Root-relative paths of the local modules, sorted. */
  files: string[];
  /** Bare specifiers imported by any of them, sorted. */
  packages: string[];
}

// ---------------------------------------------------------------- scanning

type Token = { kind: "id" | "punct" | "string" | "template"; value: string };

/** Keywords after which a `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

const isSpace = (c: string) => /\s/.test(c);
const isWord = (c: string) => /[\p{L}\p{N}_$\\]/u.test(c);

/**
 * The tokens of TypeScript source that matter to imports: identifiers, punctuation and string
 * literals (a template literal without substitutions counts as a string). Comments and the
 * bodies of regular expressions are skipped; the text of a template literal is skipped but the
 * code in its `${...}` substitutions is read.
 */
function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  // One entry per open `{`: true when it opened a template substitution.
  const braces: boolean[] = [];
  let i = source.startsWith("#!") ? source.indexOf("\n") : 0;
  if (i < 0) return tokens;
  const n = source.length;

  /** Read template text from `i` (just after "`" or "}"); true when it ended at "${". */
  const templateText = (): { text: string; open: boolean } => {
    let text = "";
    while (i < n) {
      const c = source[i];
      if (c === "\\") {
        text += source.slice(i, i + 2);
        i += 2;
      } else if (c === "`") {
        i++;
        return { text, open: false };
      } else if (c === "$" && source[i + 1] === "{") {
        i += 2;
        return { text, open: true };
      } else {
        text += c;
        i++;
      }
    }
    return { text, open: false };
  };

  const regexAllowed = (): boolean => {
    const last = tokens.at(-1);
    if (!last) return true;
    if (last.kind === "string" || last.kind === "template") return false;
    if (last.kind === "id") return BEFORE_REGEX.has(last.value);
    return last.value !== ")" && last.value !== "]";
  };

  while (i < n) {
    const c = source[i];
    if (isSpace(c)) {
      i++;
    } else if (c === "/" && source[i + 1] === "/") {
      const end = source.indexOf("\n", i);
      i = end < 0 ? n : end;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "/" && regexAllowed()) {
      // A regular expression: skip to its closing slash (not one inside [...]), then flags.
      let inClass = false;
      i++;
      while (i < n && source[i] !== "\n") {
        const r = source[i];
        if (r === "\\") i++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        i++;
      }
      i++;
      while (i < n && isWord(source[i])) i++;
      tokens.push({ kind: "punct", value: "regex" });
    } else if (c === '"' || c === "'") {
      let value = "";
      i++;
      while (i < n && source[i] !== c && source[i] !== "\n") {
        if (source[i] === "\\") {
          value += source.slice(i, i + 2);
          i += 2;
        } else {
          value += source[i++];
        }
      }
      i++;
      tokens.push({ kind: "string", value });
    } else if (c === "`") {
      i++;
      const { text, open } = templateText();
      if (open) {
        tokens.push({ kind: "template", value: text });
        braces.push(true);
      } else {
        tokens.push({ kind: "string", value: text });
      }
    } else if (c === "{") {
      braces.push(false);
      tokens.push({ kind: "punct", value: c });
      i++;
    } else if (c === "}") {
      i++;
      if (braces.pop()) {
        // The end of a template substitution: the template's text goes on.
        const { open } = templateText();
        if (open) braces.push(true);
        tokens.push({ kind: "template", value: "" });
      } else {
        tokens.push({ kind: "punct", value: c });
      }
    } else if (isWord(c)) {
      const start = i;
      while (i < n && isWord(source[i])) i++;
      tokens.push({ kind: "id", value: source.slice(start, i) });
    } else {
      tokens.push({ kind: "punct", value: c });
      i++;
    }
  }
  return tokens;
}

/**
 * Index just past an import or export clause that starts at `i` and ends with `from`, or -1.
 * `braceTypes` collects, for every name between braces, whether it is marked `type`.
 */
function clauseEnd(tokens: Token[], i: number, braceTypes: boolean[]): number {
  let inBraces = false;
  let closed = false;
  let startOfName = true;
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === "id" && t.value === "from" && !inBraces) return i + 1;
    // Only `from` may follow the closing brace (a `{ a }` statement without it ends here).
    if (closed) return -1;
    if (t.kind === "id") {
      if (inBraces && startOfName) braceTypes.push(t.value === "type");
      startOfName = false;
    } else if (t.value === "{" && !inBraces) {
      inBraces = true;
      startOfName = true;
    } else if (t.value === "}" && inBraces) {
      inBraces = false;
      closed = true;
    } else if (t.value === "," || t.value === "*") {
      startOfName = true;
    } else if (t.kind === "string" && inBraces) {
      // `{ "a-b" as c }`: an arbitrary module namespace name.
      if (startOfName) braceTypes.push(false);
      startOfName = false;
    } else {
      return -1;
    }
  }
  return -1;
}

/**
 * The module specifiers of TypeScript or JavaScript `source`: static imports, re-exports and
 * dynamic imports whose specifier is a literal, in order of appearance.
 */
export function scanImports(source: string): ModuleImport[] {
  const tokens = tokenize(source);
  const found: ModuleImport[] = [];
  const at = (i: number) => tokens[i] ?? { kind: "punct", value: "" };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== "id" || (t.value !== "import" && t.value !== "export")) continue;
    if (at(i - 1).value === ".") continue; // a property named import / export
    const next = at(i + 1);
    if (t.value === "import" && next.value === "(") {
      const spec = at(i + 2);
      const after = at(i + 3).value;
      if (spec.kind === "string" && (after === ")" || after === ",")) {
        found.push({
          specifier: spec.value,
          dynamic: true,
          typeOnly: at(i - 1).value === "typeof",
        });
      }
      continue;
    }
    if (t.value === "import" && next.kind === "string") {
      found.push({ specifier: next.value, dynamic: false, typeOnly: false });
      continue;
    }
    if (t.value === "export" && !["{", "*", "type"].includes(next.value)) continue;
    // `import type X from`, `export type { X } from`; but `import type from "..."` imports a
    // default export named "type".
    const typeKeyword = next.value === "type" && at(i + 2).value !== "from" &&
      at(i + 2).value !== ",";
    const braceTypes: boolean[] = [];
    const end = clauseEnd(tokens, typeKeyword ? i + 2 : i + 1, braceTypes);
    if (end < 0 || at(end).kind !== "string") continue;
    const onlyBraces = at(typeKeyword ? i + 2 : i + 1).value === "{";
    const allTyped = onlyBraces && braceTypes.length > 0 && braceTypes.every((x) => x);
    found.push({ specifier: at(end).value, dynamic: false, typeOnly: typeKeyword || allTyped });
    i = end;
  }
  return found;
}

// ---------------------------------------------------------------- the closure

interface ModuleInfo {
  text: string;
  /** URLs of the local modules it runs. */
  local: string[];
  /** Bare specifiers it imports. */
  bare: string[];
}

const modules = new Map<string, Promise<ModuleInfo>>();

const isLocal = (specifier: string) => specifier.startsWith("./") || specifier.startsWith("../");

function readModule(href: string, importer?: string): Promise<ModuleInfo> {
  let info = modules.get(href);
  if (!info) {
    info = (async () => {
      let text: string;
      try {
        text = await Deno.readTextFile(new URL(href));
      } catch (e) {
        const from = importer ? ` (imported by ${relativePath(importer)})` : "";
        throw new Error(`cannot read ${relativePath(href)}${from}: ${(e as Error).message}`);
      }
      const local: string[] = [];
      const bare: string[] = [];
      for (const found of scanImports(text)) {
        if (found.typeOnly) continue;
        if (isLocal(found.specifier)) local.push(new URL(found.specifier, href).href);
        else if (isPackage(found.specifier)) bare.push(found.specifier);
      }
      return { text, local, bare };
    })();
    modules.set(href, info);
  }
  return info;
}

/**
 * Bare specifiers ("yaml", "@scope/name/sub") and `npm:` / `jsr:` ones name packages; other
 * URL schemes (node:, https:, file:) and absolute paths do not.
 */
function isPackage(specifier: string): boolean {
  if (specifier.startsWith("npm:") || specifier.startsWith("jsr:")) return true;
  return !specifier.startsWith("/") && !/^[a-z][a-z0-9+.-]*:/i.test(specifier);
}

/** Path of `href` relative to the repository root (the URL itself when outside it). */
function relativePath(href: string): string {
  return href.startsWith(ROOT.href) ? decodeURIComponent(href.slice(ROOT.href.length)) : href;
}

/** Every local module that `entries` (root-relative paths) run, and the packages they import. */
export async function importClosure(entries: string[]): Promise<CodeClosure> {
  const seen = new Map<string, ModuleInfo>();
  const packages = new Set<string>();
  const visit = async (href: string, importer?: string): Promise<void> => {
    if (seen.has(href)) return;
    const info = await readModule(href, importer);
    if (seen.has(href)) return;
    seen.set(href, info);
    for (const b of info.bare) packages.add(b);
    await Promise.all(info.local.map((next) => visit(next, href)));
  };
  await Promise.all(entries.map((e) => visit(new URL(e, ROOT).href)));
  return {
    files: [...seen.keys()].map(relativePath).sort(),
    packages: [...packages].sort(),
  };
}

// ---------------------------------------------------------------- packages

interface LockPackage {
  integrity?: string;
  dependencies?: string[];
  optionalDependencies?: string[];
}

interface Pins {
  imports: Record<string, string>;
  /** deno.lock's resolved specifiers and npm packages, when it has them. */
  specifiers?: Record<string, string>;
  npm?: Record<string, LockPackage>;
}

let pins: Promise<Pins> | undefined;

async function readJson(name: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(new URL(name, ROOT)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read ${name}: ${(e as Error).message}`);
  }
}

function readPins(): Promise<Pins> {
  pins ??= (async () => {
    const config = await readJson("deno.json");
    const lock = await readJson("deno.lock");
    return {
      imports: (config?.imports ?? {}) as Record<string, string>,
      specifiers: lock?.specifiers as Pins["specifiers"],
      npm: lock?.npm as Pins["npm"],
    };
  })();
  return pins;
}

/** The package name of an npm lock key or dependency ("@scope/name@1.0.0_peer" -> "@scope/name"). */
function packageName(entry: string): string {
  const at = entry.indexOf("@", 1);
  return at < 0 ? entry : entry.slice(0, at);
}

/** Lock keys of `root` and everything it depends on, each with its integrity hash. */
function lockClosure(root: string, npm: Record<string, LockPackage>): string[] {
  const byName = new Map<string, string[]>();
  for (const key of Object.keys(npm)) {
    const name = packageName(key);
    byName.set(name, [...byName.get(name) ?? [], key]);
  }
  const resolve = (dep: string): string[] => {
    const keys = byName.get(packageName(dep)) ?? [];
    if (packageName(dep) === dep) return keys;
    return keys.filter((k) => k === dep || k.startsWith(`${dep}_`));
  };
  const seen = new Set<string>();
  const stack = [root];
  while (stack.length > 0) {
    const key = stack.pop()!;
    if (seen.has(key) || !npm[key]) continue;
    seen.add(key);
    const p = npm[key];
    for (const dep of [...p.dependencies ?? [], ...p.optionalDependencies ?? []]) {
      stack.push(...resolve(dep));
    }
  }
  return [...seen].sort().map((k) => `${k} ${npm[k].integrity ?? ""}`);
}

/** What a bare specifier contributes to a code version: its pin and locked packages. */
function packageVersion(specifier: string, p: Pins): string {
  let target = p.imports[specifier];
  if (target === undefined) {
    const prefix = Object.keys(p.imports)
      .filter((k) => k.endsWith("/") && specifier.startsWith(k))
      .sort((a, b) => b.length - a.length)[0];
    target = prefix ? p.imports[prefix] + specifier.slice(prefix.length) : specifier;
  }
  const lines = [`${specifier} -> ${target}`];
  const npm = /^npm:\/?(@?[^@/]+(?:\/[^@/]+)?)(?:@([^/]+))?/.exec(target);
  if (npm && p.specifiers && p.npm) {
    const requested = `npm:${npm[1]}${npm[2] ? `@${npm[2]}` : ""}`;
    const resolved = p.specifiers[requested];
    if (resolved) lines.push(...lockClosure(`${npm[1]}@${resolved}`, p.npm));
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- the version

const versions = new Map<string, Promise<string>>();

/**
 * Hash of the code that `entries` (root-relative module paths) run: the path and text of every
 * module in their import closure, the pinned versions of the packages they import, and
 * `extra` (versions declared by hand, such as a task's `version`).
 */
export function codeVersion(entries: string[], extra: string[] = []): Promise<string> {
  const id = JSON.stringify([entries, extra]);
  let version = versions.get(id);
  if (!version) {
    version = (async () => {
      const closure = await importClosure(entries);
      const p = await readPins();
      const parts = await Promise.all(closure.files.map(async (file) => {
        const { text } = await readModule(new URL(file, ROOT).href);
        return `file ${file}\n${text}`;
      }));
      for (const b of closure.packages) parts.push(`package ${packageVersion(b, p)}`);
      for (const e of extra) parts.push(`extra ${e}`);
      return (await sha256Hex(parts.join("\u0000"))).slice(0, 16);
    })();
    versions.set(id, version);
  }
  return version;
}
