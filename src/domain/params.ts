import { ApiError, type ErrorKind } from "./errors.js";

/**
 * One request parameter as text: absent (undefined or null) stays undefined, a JSON number or boolean
 * becomes its text, and anything else (a repeated form field, an array, an object) is refused with
 * `kind`, naming the parameter.
 */
export function optionalText(
  params: Record<string, unknown>,
  name: string,
  kind: ErrorKind,
): string | undefined {
  const value = params[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value))
    throw new ApiError(kind, `${name} must be given once, not ${value.length} times.`);
  throw new ApiError(kind, `${name} must be text.`);
}
