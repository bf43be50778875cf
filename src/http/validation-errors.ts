import type { FastifyRequest, FastifySchemaValidationError } from "fastify";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";

export type Schema = {
  properties?: Record<string, Schema>;
  items?: Schema;
  patternProperties?: Record<string, Schema>;
  anyOf?: Schema[];
  type?: string;
  maxLength?: number;
  minLength?: number;
  maxItems?: number;
  maxProperties?: number;
};

/**
 * Turns what the route schema's validator found into one ApiError that names the parameter and says
 * what to send instead. An unknown parameter is refused with the known one it probably meant (`Cc`
 * → `CC`): a parameter Mailroom does not know must never be dropped silently.
 */
export function validationError(
  errors: readonly FastifySchemaValidationError[],
  context: string,
  request: FastifyRequest,
): ApiError {
  const schema = routeSchema(request, context);
  const data =
    context === "querystring" ? request.query : context === "params" ? request.params : request.body;
  return describeValidationErrors(errors, context, schema, data);
}

/** validationError's words for errors found in `data` against `schema` (a batch item, say). */
export function describeValidationErrors(
  errors: readonly FastifySchemaValidationError[],
  context: string,
  schema: Schema | undefined,
  data: unknown,
): ApiError {
  const unknown = errors.find((e) => e.keyword === "additionalProperties");
  if (unknown) {
    const name = String(unknown.params.additionalProperty);
    const known = Object.keys(schemaAt(schema, unknown.instancePath)?.properties ?? {});
    const where =
      unknown.instancePath !== ""
        ? ` in ${describePath(unknown.instancePath)}`
        : context === "querystring"
          ? " in the query"
          : "";
    const guess = closest(name, known);
    const hint = guess
      ? ` Did you mean "${guess}"?`
      : known.length > 0
        ? ` Known parameters: ${known.join(", ")}.`
        : " This takes none there.";
    return new ApiError("UnknownParameter", `Unknown parameter ${quoteInput(name)}${where}.${hint}`);
  }
  // With alternatives (text or a list of text), the error on the alternative as a whole says most,
  // unless one branch got further in (a list whose item is wrong): then that item's error.
  const deepest = errors.reduce<FastifySchemaValidationError | undefined>(
    (best, e) => (best === undefined || e.instancePath.length > best.instancePath.length ? e : best),
    undefined,
  );
  const anyOf = errors.find((e) => e.keyword === "anyOf");
  const error =
    anyOf && deepest && deepest.instancePath.length <= anyOf.instancePath.length ? anyOf : deepest;
  if (!error) return new ApiError("InvalidParameter", "The request's parameters are not valid.");
  const path = error.instancePath;
  const name = describePath(path) || "The request body";
  const value = valueAt(data, path);
  const at = schemaAt(schema, path);
  switch (error.keyword) {
    case "required":
      return new ApiError(
        "InvalidParameter",
        `${joinPath(name, String(error.params.missingProperty))} is required.`,
      );
    case "type":
    case "anyOf":
      return new ApiError(
        "InvalidParameter",
        `${name} must be ${expected(at)}, not ${describeValue(value)}.`,
      );
    case "maxLength":
    case "minLength":
      return new ApiError(
        "InvalidParameter",
        `${name} must be ${error.keyword === "maxLength" ? `at most ${at?.maxLength}` : `at least ${at?.minLength}`} characters long.`,
      );
    case "maxItems":
      return new ApiError("InvalidParameter", `${name} may have at most ${at?.maxItems} items.`);
    case "maxProperties":
      return new ApiError("InvalidParameter", `${name} may have at most ${at?.maxProperties} entries.`);
    default:
      return new ApiError("InvalidParameter", `${name} ${error.message ?? "is not valid"}.`);
  }
}

function routeSchema(request: FastifyRequest, context: string): Schema | undefined {
  const schemas = request.routeOptions.schema as Record<string, Schema | undefined> | undefined;
  return schemas?.[context];
}

/** `/Attachments/0/Content` → `Attachments[0].Content`; `/Headers/X-Id` → `Headers["X-Id"]`. */
function describePath(instancePath: string): string {
  return describeSegments(segments(instancePath).map((key) => (/^\d+$/.test(key) ? Number(key) : key)));
}

/** `["Attachments", 0, "Content"]` → `Attachments[0].Content`; a key of any other shape is quoted (and cut short). */
export function describeSegments(path: ReadonlyArray<string | number>): string {
  let out = "";
  for (const key of path) out = typeof key === "number" ? `${out}[${key}]` : joinPath(out, key);
  return out;
}

function joinPath(base: string, key: string): string {
  const plain = /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(key);
  if (base === "") return plain ? key : quoteInput(key);
  return plain ? `${base}.${key}` : `${base}[${quoteInput(key)}]`;
}

function segments(instancePath: string): string[] {
  return instancePath
    .split("/")
    .slice(1)
    .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

function valueAt(data: unknown, instancePath: string): unknown {
  let value = data;
  for (const key of segments(instancePath)) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function schemaAt(schema: Schema | undefined, instancePath: string): Schema | undefined {
  let at = schema;
  for (const key of segments(instancePath)) {
    if (!at) return undefined;
    // Into alternatives (text or a list of text): the branch that has what the path goes into.
    const branches: Schema[] = at.anyOf ?? [at];
    const step = (b: Schema) => b.properties?.[key] ?? b.items ?? Object.values(b.patternProperties ?? {})[0];
    at = branches.map(step).find((next) => next !== undefined);
  }
  return at;
}

function expected(schema: Schema | undefined): string {
  if (!schema) return "of another type";
  if (schema.anyOf) return schema.anyOf.map(expected).join(" or ");
  switch (schema.type) {
    case "string":
      return "text";
    case "array": {
      const item = expected(schema.items).replace(/^an? /, "");
      return `a list of ${item === "text" ? item : `${item}s`}`;
    }
    case "object":
      return schema.patternProperties ? "an object of names to text" : "an object";
    case "integer":
      return "a whole number";
    case "boolean":
      return "true or false";
    default:
      return `of type ${schema.type ?? "unknown"}`;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "string") return "text";
  if (typeof value === "object") return "an object";
  return `a ${typeof value} (${JSON.stringify(value)})`;
}

/** The known name `name` most probably meant: same letters ignoring case and punctuation, or one or two typos. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const plain = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");
  const wanted = plain(name);
  const same = known.find((k) => plain(k) === wanted);
  if (same) return same;
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = editDistance(wanted, plain(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A short name is easily one typo from many others: allow fewer edits for it.
  return bestDistance <= Math.min(2, Math.floor(wanted.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
