/**
 * Config keys declared once: each key's type, range, default and a one-line doc, from which
 * validation, the lists of valid keys, the messages and docs/spec-keys.md are derived.
 *
 * The spec's own keys are declared in ../spec/schema.ts; each task declares its `task.params`
 * with `defineParams` (tasks/*.ts). This module holds only the kinds of field and what they
 * accept, so that a task's code (and so its cache keys) does not change when a spec key is
 * added.
 */
/** One upper bound of a value: the largest allowed, and why (pipeline/spec/limits.ts). */
export interface Limit {
  max: number;
  reason: string;
}

/** What every field has. */
interface FieldBase {
  /**
   * One line: what the key does (docs/spec-keys.md). Every key has one; the items of a list
   * and the options of a union may leave it out.
   */
  doc?: string;
  /** The message's "expected ..." text, when the one derived from the type would be unclear. */
  expected?: string;
  /** The key must be given (there is no default). */
  required?: boolean;
}

/** An integer in [min, max]; `limit` is an upper bound with its reason (../spec/limits.ts). */
export interface IntField extends FieldBase {
  type: "int";
  min?: number;
  max?: number;
  limit?: Limit;
  default?: number;
}

/** A finite number; either end may be exclusive. `unit` names what it counts. */
export interface NumberField extends FieldBase {
  type: "number";
  min?: number;
  exclusiveMin?: boolean;
  max?: number;
  exclusiveMax?: boolean;
  limit?: Limit;
  unit?: string;
  default?: number;
}

export interface BoolField extends FieldBase {
  type: "bool";
  default?: boolean;
}

/** One of a fixed set of values. */
export interface EnumField extends FieldBase {
  type: "enum";
  values: readonly (string | number | boolean)[];
  default?: string | number | boolean;
}

export interface StringField extends FieldBase {
  type: "string";
  pattern?: RegExp;
  default?: string;
}

/**
 * A list of values of one kind. `noun` names an item in messages ("seed": "at most 1000
 * seeds", "distinct seeds"); `limit` bounds its length.
 */
export interface ListField extends FieldBase {
  type: "list";
  items: ValueField;
  minItems?: number;
  maxItems?: number;
  distinct?: boolean;
  limit?: Limit;
  noun?: string;
  default?: readonly unknown[];
}

/** A value of any of `options`, tried in order (e.g. "auto" or an integer). */
export interface UnionField extends FieldBase {
  type: "union";
  options: readonly ValueField[];
  default?: unknown;
}

/** A mapping of named keys, each with its own field. */
export interface SectionField extends FieldBase {
  type: "section";
  fields: Fields;
}

/** A mapping whose keys are chosen by the user (arm names, sweep paths), each a `values`. */
export interface MapField extends FieldBase {
  type: "map";
  /** How a key is written in docs, e.g. "<arm>". */
  key: string;
  values: Field;
}

/** A field that holds a value (as opposed to a mapping of fields). */
export type ValueField =
  | IntField
  | NumberField
  | BoolField
  | EnumField
  | StringField
  | ListField
  | UnionField;

export type Field = ValueField | SectionField | MapField;

/** Keys to fields, in the order they are listed in messages and docs. */
export type Fields = Readonly<Record<string, Field>>;

/** A problem with one value: what was expected, and what was found when not the value. */
export interface ValueProblem {
  expected: string;
  found?: string;
}

// ---------------------------------------------------------------------------------------
// What a field accepts, and the message when it does not

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** The range of a number or integer as words: "from 1 to 4", ">= 0", "in (0, 100]". */
function rangeWords(f: IntField | NumberField): string {
  const exMin = f.type === "number" && f.exclusiveMin === true;
  const exMax = f.type === "number" && f.exclusiveMax === true;
  const { min, max } = f;
  if (min !== undefined && max !== undefined) {
    return exMin || exMax
      ? `in ${exMin ? "(" : "["}${min}, ${max}${exMax ? ")" : "]"}`
      : `from ${min} to ${max}`;
  }
  if (min !== undefined) return `${exMin ? ">" : ">="} ${min}`;
  if (max !== undefined) return `${exMax ? "<" : "<="} ${max}`;
  return "";
}

/** A value of `f` in words, singular ("an integer >= 0") or plural ("integers >= 0"). */
function valueWords(f: ValueField, plural: boolean): string {
  const joined = (head: string, range: string) => range ? `${head} ${range}` : head;
  switch (f.type) {
    case "int":
      return joined(plural ? "integers" : "an integer", rangeWords(f));
    case "number": {
      const head = plural ? "numbers" : "a number";
      return joined(f.unit ? `${head} of ${f.unit}` : head, rangeWords(f));
    }
    case "bool":
      return plural ? "true or false values" : "true or false";
    case "enum": {
      const values = f.values.map((v) => JSON.stringify(v)).join(", ");
      return plural ? `values from ${values}` : `one of ${values}`;
    }
    case "string":
      return joined(plural ? "strings" : "a string", f.pattern ? `matching ${f.pattern}` : "");
    case "list":
      return plural ? "lists" : listWords(f);
    case "union":
      return f.options.map((o) =>
        o.type === "enum" && !o.expected
          ? o.values.map((v) => JSON.stringify(v)).join(" or ")
          : expectedOf(o)
      ).join(" or ");
  }
}

function listWords(f: ListField): string {
  const min = f.minItems ?? 0;
  const head = min > 0 && min === f.maxItems
    ? `a list of ${min} `
    : min > 1
    ? `a list of at least ${min} `
    : min === 1
    ? "a non-empty list of "
    : "a list of ";
  const distinct = f.distinct ? "distinct " : "";
  return `${head}${distinct}${f.items.expected ?? valueWords(f.items, true)}`;
}

/** What a message says a field expects: its `expected`, else words from its type and range. */
export function expectedOf(f: ValueField): string {
  return f.expected ?? valueWords(f, false);
}

/** Plural of a list's noun: "seed" -> "seeds". */
function nouns(f: ListField): string {
  return `${f.noun ?? "item"}s`;
}

/** The bound of a list's length, as a problem, when `length` passes it. */
export function listLimitProblem(f: ListField, length: number): ValueProblem | undefined {
  if (!f.limit || length <= f.limit.max) return undefined;
  return {
    expected: `at most ${f.limit.max} ${nouns(f)} (${f.limit.reason})`,
    found: `a list of ${length} ${nouns(f)}`,
  };
}

/** What a duplicate item of a list is expected to be: "distinct seeds". */
export function distinctExpected(f: ListField): string {
  return `distinct ${nouns(f)}`;
}

/**
 * What is wrong with `value` as a value of `f`, or undefined when it is fine. A value in
 * range but past the field's `limit` is expected to be at most the limit, with its reason.
 */
export function problemOf(f: ValueField, value: unknown): ValueProblem | undefined {
  const wrong = { expected: expectedOf(f) };
  switch (f.type) {
    case "int":
    case "number": {
      const ok = f.type === "int" ? Number.isSafeInteger(value) : isNumber(value);
      if (!ok) return wrong;
      const v = value as number;
      const exMin = f.type === "number" && f.exclusiveMin === true;
      const exMax = f.type === "number" && f.exclusiveMax === true;
      if (f.min !== undefined && (exMin ? v <= f.min : v < f.min)) return wrong;
      if (f.max !== undefined && (exMax ? v >= f.max : v > f.max)) return wrong;
      if (f.limit && v > f.limit.max) {
        const kind = f.type === "int" ? "an integer" : "a number";
        return { expected: `${kind} <= ${f.limit.max} (${f.limit.reason})` };
      }
      return undefined;
    }
    case "bool":
      return typeof value === "boolean" ? undefined : wrong;
    case "enum":
      return f.values.includes(value as string) ? undefined : wrong;
    case "string":
      return typeof value === "string" && (!f.pattern || f.pattern.test(value)) ? undefined : wrong;
    case "list": {
      if (!Array.isArray(value) || value.length < (f.minItems ?? 0)) return wrong;
      if (f.maxItems !== undefined && value.length > f.maxItems) return wrong;
      const limit = listLimitProblem(f, value.length);
      if (limit) return limit;
      if (value.some((item) => problemOf(f.items, item) !== undefined)) return wrong;
      if (f.distinct && new Set(value.map((v) => JSON.stringify(v))).size !== value.length) {
        return wrong;
      }
      return undefined;
    }
    case "union": {
      const problems = f.options.map((o) => problemOf(o, value));
      if (problems.some((p) => p === undefined)) return undefined;
      // A number beyond an integer option's bound says so, as that option alone would.
      const int = f.options.findIndex((o) => o.type === "int");
      return int >= 0 && typeof value === "number" && Number.isInteger(value)
        ? problems[int]
        : wrong;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Defaults and task parameters

/** Each key of `fields` that has a default, with a fresh copy of it. */
export function defaultsOf(fields: Fields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(fields)) {
    if ("default" in f && f.default !== undefined) out[key] = structuredClone(f.default);
  }
  return out;
}

/** One problem with a task parameter (the shape of tasks/task.ts's ParamProblem). */
export interface FieldProblem {
  key: string;
  expected: string;
  found: unknown;
}

/** What a task's parameters are checked against (tasks/task.ts's TaskConfig). */
export interface ParamConfig {
  imageSize: number;
  patchSize: number;
  params: Record<string, unknown>;
}

/**
 * Rules between parameters (or with the image and patch size) that a field's own type and
 * range cannot say; `invalid` holds the keys that already failed their field, whose values
 * the rules should not rely on.
 */
export type CrossRules = (config: ParamConfig, invalid: ReadonlySet<string>) => FieldProblem[];

/** A task's `task.params` declared once: what tasks/task.ts's Task takes from it. */
export interface DeclaredParams {
  paramSchema: Fields;
  defaultParams: Record<string, unknown>;
  /** The fields' own checks, then `cross`; over the defaults merged with `config.params`. */
  checkParams(config: ParamConfig): FieldProblem[];
}

/** Checks each field of `fields` in `params` (merged with the defaults by the caller). */
export function checkFields(fields: Fields, params: Record<string, unknown>): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const [key, f] of Object.entries(fields)) {
    if (f.type === "section" || f.type === "map") continue;
    const problem = problemOf(f, params[key]);
    if (problem) problems.push({ key, expected: problem.expected, found: params[key] });
  }
  return problems;
}

/**
 * A list field of distinct values from `values`, at least `minItems` of them (a task's
 * colours, the pretraining mix's question kinds); an item is expected as
 * "<noun> from a, b, c".
 */
export function distinctListOf(
  values: readonly string[],
  noun: string,
  field: { minItems: number; default: readonly string[]; doc: string },
): ListField {
  return {
    type: "list",
    items: { type: "enum", values, expected: `${noun} from ${values.join(", ")}` },
    minItems: field.minItems,
    distinct: true,
    default: field.default,
    doc: field.doc,
  };
}

/**
 * A task's parameters from their declaration: the defaults, and a checkParams that runs each
 * field's check, then the cross-field rules.
 */
export function defineParams(fields: Fields, cross?: CrossRules): DeclaredParams {
  return {
    paramSchema: fields,
    defaultParams: defaultsOf(fields),
    checkParams(config) {
      const params = { ...defaultsOf(fields), ...config.params };
      const problems = checkFields(fields, params);
      const invalid = new Set(problems.map((p) => p.key));
      const merged = { ...config, params };
      return cross ? [...problems, ...cross(merged, invalid)] : problems;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Docs

/** A field's type in words, for docs: "integer", "list of numbers", `"auto" or integer`. */
export function typeWords(f: Field): string {
  switch (f.type) {
    case "int":
      return "integer";
    case "number":
      return f.unit ? `number (${f.unit})` : "number";
    case "bool":
      return "boolean";
    case "enum":
      return f.values.map((v) => JSON.stringify(v)).join(" | ");
    case "string":
      return "string";
    case "list":
      return `list of ${typeWords(f.items)}`;
    case "union":
      return f.options.map(typeWords).join(" | ");
    case "section":
      return "mapping";
    case "map":
      return `mapping of ${f.key}`;
  }
}

/** A field's range in words, for docs ("" when it has none beyond its type). */
export function rangeDoc(f: Field): string {
  switch (f.type) {
    case "int":
    case "number": {
      const parts = [rangeWords(f)].filter((p) => p !== "");
      if (f.limit) parts.push(`<= ${f.limit.max} (${f.limit.reason})`);
      return parts.join(", ");
    }
    case "string":
      return f.pattern ? `matching \`${f.pattern.source}\`` : "";
    case "list": {
      const parts: string[] = [];
      const min = f.minItems ?? 0;
      if (min > 0 && min === f.maxItems) parts.push(`exactly ${min}`);
      else {
        if (min > 0) parts.push(`at least ${min}`);
        if (f.maxItems !== undefined) parts.push(`at most ${f.maxItems} items`);
      }
      if (f.distinct) parts.push("distinct");
      const items = rangeDoc(f.items);
      if (items) parts.push(`each ${items}`);
      if (f.limit) parts.push(`at most ${f.limit.max} (${f.limit.reason})`);
      return parts.join(", ");
    }
    case "union":
      return f.options.map(rangeDoc).filter((r) => r !== "").join("; ");
    default:
      return "";
  }
}

/** A field's default in words, for docs: the value as YAML/JSON, "required" or "none". */
export function defaultDoc(f: Field): string {
  if (f.required) return "required";
  if (f.type === "section" || f.type === "map") return "";
  if (f.default === undefined) return "none";
  return `\`${JSON.stringify(f.default)}\``;
}
