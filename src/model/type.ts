import type { Type as TypeBox } from "typebox";

/**
 * The TypeBox builders Mailroom's schemas use, made here: importing `typebox` loads its whole type
 * engine (about 370 modules, 2.3-3.3 MB of heap), which the main thread kept only to build these
 * plain objects at start. Each builder returns exactly what TypeBox 1.x returns (the same enumerable
 * keys in the same order, the same hidden `~kind` and `~optional`), so ajv, the OpenAPI document and
 * TypeBox's own compiler (typebox-check.ts, loaded for batches) see TypeBox schemas;
 * test/type-builders.test.ts rebuilds every route's schema with TypeBox and compares. The types are
 * TypeBox's, so `Static<>` works as before; a builder not listed here is a type error.
 */
export type Builders = Pick<
  typeof TypeBox,
  | "Array"
  | "Boolean"
  | "Integer"
  | "Literal"
  | "Null"
  | "Object"
  | "Optional"
  | "Record"
  | "String"
  | "Union"
  | "Unknown"
>;

type Schema = Record<string, unknown>;
type Options = Schema | undefined;

/** TypeBox's Memory.Create: the enumerable keys, then the options, then the hidden keys. */
function create(kind: string, enumerable: Schema, options: Options): Schema {
  const schema = { ...enumerable, ...options };
  return hide(schema, "~kind", kind);
}

/** TypeBox's Memory.Update: the type's own keys (but those given anew), then hidden, then options. */
function update(type: Schema, hidden: Schema, options: Options): Schema {
  const result: Schema = {};
  const given = [...Object.keys(hidden), ...Object.keys(options ?? {})];
  for (const key of [...Object.getOwnPropertyNames(type), ...Object.getOwnPropertySymbols(type)]) {
    if (typeof key === "string" && given.includes(key)) continue;
    Object.defineProperty(result, key, Object.getOwnPropertyDescriptor(type, key) as PropertyDescriptor);
  }
  for (const [key, value] of Object.entries(hidden)) hide(result, key, value);
  for (const [key, value] of Object.entries(options ?? {})) {
    Object.defineProperty(result, key, { configurable: true, enumerable: true, writable: true, value });
  }
  return result;
}

function hide(schema: Schema, key: string, value: unknown): Schema {
  return Object.defineProperty(schema, key, { configurable: true, enumerable: false, writable: true, value });
}

function literalType(value: unknown): string {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean")
    return typeof value;
  if (typeof value === "bigint") return "bigint";
  throw new Error("Invalid Literal value");
}

const builders = {
  Array: (items: Schema, options?: Schema) => create("Array", { type: "array", items }, options),
  Boolean: (options?: Schema) => create("Boolean", { type: "boolean" }, options),
  Integer: (options?: Schema) => create("Integer", { type: "integer" }, options),
  Literal: (value: unknown, options?: Schema) =>
    create("Literal", { type: literalType(value), const: value }, options),
  Null: (options?: Schema) => create("Null", { type: "null" }, options),
  Object: (properties: Record<string, Schema>, options: Schema = {}) => {
    const required = Object.getOwnPropertyNames(properties).filter(
      (key) => !Object.hasOwn(properties[key] as Schema, "~optional"),
    );
    return create(
      "Object",
      { type: "object", ...(required.length > 0 ? { required } : {}), properties },
      options,
    );
  },
  Optional: (type: Schema) => update(type, { "~optional": true }, {}),
  Record: (key: Schema, value: Schema, options: Schema = {}) => {
    // TypeBox turns other keys (literals, unions, integers) into other shapes: not needed, so refused.
    if (key["~kind"] !== "String" || Object.keys(key).length !== 1) {
      throw new Error("model/type.ts: Record takes only Type.String() keys");
    }
    return update(
      create("Record", { type: "object", patternProperties: { "^.*$": value } }, {}),
      {},
      options,
    );
  },
  String: (options?: Schema) => create("String", { type: "string" }, options),
  Union: (anyOf: Schema[], options: Schema = {}) => create("Union", { anyOf }, options),
  Unknown: (options?: Schema) => create("Unknown", {}, options),
};

const Type = builders as unknown as Builders;
export default Type;
