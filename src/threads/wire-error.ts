/** An error as it crosses threads: structured cloning would drop `code`, which decides 503 or 400. */
export interface WireError {
  name: string;
  message: string;
  stack: string | undefined;
  props: Record<string, string | number | boolean>;
}

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error))
    return { name: "Error", message: String(error), stack: undefined, props: {} };
  const props: WireError["props"] = {};
  for (const [key, value] of Object.entries(error)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean")
      props[key] = value;
  }
  return { name: error.name, message: error.message, stack: error.stack, props };
}

export function fromWire(wire: WireError): Error {
  const error = Object.assign(new Error(wire.message), wire.props);
  error.name = wire.name;
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
