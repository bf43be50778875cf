import type { FastifySchemaValidationError } from "fastify";
import type { TSchema } from "typebox";
import { Compile } from "typebox/compile";

/** Errors of one check, in the shape Fastify's validator (ajv) gives them, or undefined when valid. */
export type SchemaCheck = (data: unknown) => FastifySchemaValidationError[] | undefined;

/**
 * A TypeBox schema compiled once (for checks made outside a route's own validation: the items of a
 * batch), whose errors read as the route validator's do, so validation-errors.ts words them the same.
 * Like the routes' ajv (allErrors off), it reports the first parameter found wrong, not every one.
 */
export function compileCheck(schema: TSchema): SchemaCheck {
  const validator = Compile(schema);
  return (data) => {
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
