import type { FastifySchemaValidationError } from "fastify";
import type { TSchema } from "typebox";
import type { Validator } from "typebox/compile";

/** Errors of one check, in the shape Fastify's validator (ajv) gives them, or undefined when valid. */
export type SchemaCheck = (data: unknown) => FastifySchemaValidationError[] | undefined;

/**
 * TypeBox's compiler, loaded by the first batch (loadSchemaChecks): about 2.3 MB of heap beyond
 * TypeBox's types, which every major GC of the main thread marked in installations that never send
 * a batch (the routes themselves are checked by Fastify's ajv).
 */
let compiler: typeof import("typebox/compile") | undefined;
let loading: Promise<void> | undefined;

/** Loads the compiler once; a check is made only after this has resolved (a failed load is retried). */
export function loadSchemaChecks(): Promise<void> {
  loading ??= import("typebox/compile").then(
    (module) => {
      compiler = module;
    },
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/**
 * A TypeBox schema compiled at its first check (for checks made outside a route's own validation: the
 * items of a batch), whose errors read as the route validator's do, so validation-errors.ts words them
 * the same. Like the routes' ajv (allErrors off), it reports the first parameter found wrong, not every
 * one. Call it only once loadSchemaChecks() has resolved.
 */
export function compileCheck(schema: TSchema): SchemaCheck {
  let validator: Validator | undefined;
  return (data) => {
    if (compiler === undefined) throw new Error("compileCheck: a check before loadSchemaChecks() resolved");
    validator ??= compiler.Compile(schema);
    if (validator.Check(data)) return undefined;
    const errors: FastifySchemaValidationError[] = [];
    for (const error of validator.Errors(data)) {
      // TypeBox reports an unknown property twice: as the `false` schema it met, and as
      // additionalProperties (with every name); ajv says additionalProperty, one name.
      if (error.keyword === "boolean") continue;
      errors.push({
        keyword: error.keyword,
        instancePath: error.instancePath,
        schemaPath: error.schemaPath,
        params: ajvParams(error.params as Record<string, unknown>),
        message: error.message,
      });
    }
    const unknown = errors.find((e) => e.keyword === "additionalProperties");
    if (unknown) return [unknown];
    const first = topOf(errors[0]?.instancePath ?? "");
    return errors.filter((e) => topOf(e.instancePath) === first);
  };
}

/** TypeBox names every unknown or missing property; ajv (and validation-errors.ts) one of each. */
function ajvParams(params: Record<string, unknown>): Record<string, unknown> {
  const { additionalProperties: extra, requiredProperties: missing } = params;
  if (Array.isArray(extra)) return { additionalProperty: String(extra[0]) };
  if (Array.isArray(missing)) return { missingProperty: String(missing[0]) };
  return params;
}

/** The parameter an error is about: the first segment of its path. */
function topOf(instancePath: string): string {
  return instancePath.split("/")[1] ?? "";
}
