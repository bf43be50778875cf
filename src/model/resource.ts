import Type, { type TObject, type TSchema } from "typebox";
import { flatListText, flatObjectText, jsonString } from "./json-text.js";

/**
 * A resource is declared once, as ordered snake_case output fields, each with its JSON Schema and
 * description and how its value is read from the source object. The JSON and Restcomm XML
 * renderings (src/http/representation.ts) and the OpenAPI document (the `schema`) all come from
 * that one declaration. JSON leaves null fields out; XML writes them as empty elements, as Restcomm did.
 */
export type Scalar = string | number | boolean | null;

/** Names mapped to text (custom headers, tags): a JSON object; in XML `<Headers><Header><Name>…<Value>…`. */
export class NamedValues {
  constructor(readonly entries: Readonly<Record<string, string>>) {}
}

export type FieldValue =
  | Scalar
  | NamedValues
  /** Fixed keys, e.g. subresource_uris: a JSON object; in XML one element per key. */
  | Readonly<Record<string, string>>
  /** A list of records, e.g. an attempt's recipients; in XML `<Recipients><Recipient>…` (the key less its "s"). */
  | ReadonlyArray<Readonly<Record<string, Scalar>>>;

export type Fields = ReadonlyArray<readonly [string, FieldValue]>;

/** One rendered resource: the XML element name (e.g. `EmailMessage`) and its fields in order. */
export interface Resource {
  element: string;
  readonly fields: Fields;
  /** The JSON object (null fields left out), built without the field list when the model has one. */
  json?(): Record<string, unknown>;
  /** The JSON text, exactly JSON.stringify(json()), written without the object when the model has one. */
  jsonText?(): string;
}

export interface OutputField<T> {
  key: string;
  /** The schema of the value when present (absent means null: left out of JSON). */
  schema: TSchema;
  value(source: T): FieldValue;
}

/** An output field: `description` goes into the OpenAPI document. */
export function field<T>(
  key: string,
  schema: TSchema,
  description: string,
  value: (source: T) => FieldValue,
): OutputField<T> {
  return { key, schema: { ...schema, description }, value };
}

export class ResourceModel<T> {
  /** The JSON rendering's schema (OpenAPI; tests check real responses against it). */
  readonly schema: TObject;

  constructor(
    /** The XML element of one item, e.g. `EmailMessage`. */
    readonly element: string,
    readonly fields: readonly OutputField<T>[],
    description: string,
  ) {
    const properties: Record<string, TSchema> = {};
    for (const f of fields) properties[f.key] = Type.Optional(f.schema);
    this.schema = Type.Object(properties, { description, additionalProperties: false });
    this.toJson = compileJsonObject(fields);
    this.toJsonText = compileJsonText(fields);
  }

  /** The JSON object of a source: see compileJsonObject. */
  private readonly toJson: (source: T) => Record<string, unknown>;
  /** The JSON text of a source: see compileJsonText. */
  private readonly toJsonText: (source: T) => string;

  /** The resource for `source`; its fields are read only when asked for (JSON needs no field list). */
  render(source: T): Resource {
    return new RenderedResource(this.element, this.fields, this.toJson, this.toJsonText, source);
  }
}

/**
 * What ResourceModel.render returns: one small object per answer. (An object literal with a getter
 * and two arrow functions made a closure per member and defined the getter through a runtime call,
 * on every send.)
 */
class RenderedResource<T> implements Resource {
  constructor(
    readonly element: string,
    private readonly outputFields: readonly OutputField<T>[],
    private readonly toJson: (source: T) => Record<string, unknown>,
    private readonly toJsonText: (source: T) => string,
    private readonly source: T,
  ) {}

  get fields(): Fields {
    return this.outputFields.map((f) => [f.key, f.value(this.source)] as const);
  }

  json(): Record<string, unknown> {
    return this.toJson(this.source);
  }

  jsonText(): string {
    return this.toJsonText(this.source);
  }
}

/**
 * Builds, once per model, the function that makes a source's JSON object: one object literal with
 * every field in declaration order, a null value as `undefined` (JSON.stringify leaves it out). Every
 * answer of a send is rendered with it; an object of one fixed shape costs about a fifth of one filled
 * key by key (no shape transitions, monomorphic stores). The generated code holds only the field
 * names, which are identifiers the model declares, never input.
 */
function compileJsonObject<T>(fields: readonly OutputField<T>[]): (source: T) => Record<string, unknown> {
  const members = fields.map((f, i) => `${JSON.stringify(f.key)}: jsonValue(values[${i}](source))`);
  const make = new Function("values", "jsonValue", `return (source) => ({ ${members.join(", ")} });`);
  return make(
    fields.map((f) => f.value),
    jsonValue,
  );
}

function jsonValue(value: FieldValue): unknown {
  if (value === null) return undefined;
  return value instanceof NamedValues ? value.entries : value;
}

/**
 * Builds, once per model, the function that writes a source's JSON text: what JSON.stringify makes of
 * the object compileJsonObject builds (the same keys in the same order, null fields left out), written
 * field by field and joined with `+` (for a resource's few dozen pieces about half of what an array and
 * its join cost, callgrind). Every send's answer is rendered with it: Node 20's JSON.stringify checks a
 * string character by character (about 25 instructions per character of a 1 KB Body, most of the
 * answer's cost), where a regular expression scans it natively and text that needs no escape is used
 * as it is.
 */
function compileJsonText<T>(fields: readonly OutputField<T>[]): (source: T) => string {
  const members = fields.map((f, i) => {
    const key = `${JSON.stringify(f.key)}:`;
    // The first field written has no comma before it: the text so far is then "{".
    return `value = values[${i}](source);
      if (value !== null && value !== undefined) text += (text.length === 1 ? ${JSON.stringify(key)} : ${JSON.stringify(`,${key}`)}) + jsonValueText(value);`;
  });
  const make = new Function(
    "values",
    "jsonValueText",
    `return (source) => { let text = "{"; let value; ${members.join("\n")} return text + "}"; };`,
  );
  return make(
    fields.map((f) => f.value),
    jsonValueText,
  );
}

function jsonValueText(value: Exclude<FieldValue, null>): string {
  if (typeof value === "string") return jsonString(value);
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value instanceof NamedValues) return flatObjectText(value.entries);
  if (Array.isArray(value)) return flatListText(value);
  return flatObjectText(value);
}

/** Helpers for common field schemas. */
export const Schemas = {
  text: Type.String(),
  integer: Type.Integer(),
  /** RFC 2822 date, as Restcomm writes dates: `Wed, 5 Feb 2014 10:12:32 +0000`. */
  rfc2822: Type.String({ examples: ["Wed, 05 Feb 2014 10:12:32 +0000"] }),
  iso8601: Type.String({ format: "date-time" }),
  namedValues: Type.Record(Type.String(), Type.String()),
  boolean: Type.Boolean(),
};
