import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import TypeBox from "typebox";
import Type from "../src/model/type.js";
import { startMailroom, type TestServer } from "./helpers/mailroom.js";

/**
 * src/model/type.ts builds Mailroom's schemas without loading TypeBox: what it builds must be what
 * TypeBox builds, to the hidden keys and the order of the keys (ajv, the OpenAPI document and
 * TypeBox's compiler all read them).
 */
describe("the schema builders (src/model/type.ts) build what TypeBox builds", () => {
  test("each builder, with and without options", () => {
    const pairs: Array<[string, unknown, unknown]> = [];
    const both = (name: string, build: (t: typeof Type) => unknown) =>
      pairs.push([name, build(Type), build(TypeBox as unknown as typeof Type)]);
    both("String", (t) => t.String());
    both("String options", (t) => t.String({ maxLength: 3, description: "d", format: "email" }));
    both("Integer", (t) => t.Integer({ minimum: 0 }));
    both("Boolean", (t) => t.Boolean({ description: "b" }));
    both("Null", (t) => t.Null());
    both("Unknown", (t) => t.Unknown({ description: "u" }));
    both("Literal string", (t) => t.Literal("x"));
    both("Literal number", (t) => t.Literal(3, { description: "n" }));
    both("Literal boolean", (t) => t.Literal(true));
    both("Array", (t) => t.Array(t.String(), { minItems: 1, maxItems: 5 }));
    both("Union", (t) => t.Union([t.Literal("a"), t.Null()], { description: "u" }));
    both("Record", (t) => t.Record(t.String(), t.String()));
    both("Record options", (t) => t.Record(t.String(), t.Unknown(), { description: "r", maxProperties: 3 }));
    both("Optional", (t) => t.Optional(t.String({ description: "o" })));
    both("Optional Object", (t) => t.Optional(t.Object({ a: t.String() })));
    both("Object", (t) =>
      t.Object(
        { a: t.String(), b: t.Optional(t.Integer()), c: t.Array(t.Optional(t.String())) },
        { additionalProperties: false, description: "o" },
      ),
    );
    both("Object all optional", (t) => t.Object({ a: t.Optional(t.String()) }));
    both("Object empty", (t) => t.Object({}));
    for (const [name, ours, theirs] of pairs) assertSame(ours, theirs, name);
    assert.throws(() => Type.Record(Type.Literal("a") as never, Type.String()), /only Type.String\(\) keys/);
  });

  describe("every route's schema", () => {
    let server: TestServer;
    before(async () => {
      server = await startMailroom();
    });
    after(async () => {
      await server?.close();
    });

    test("rebuilt with TypeBox, is the same", () => {
      const routes = (
        server.mailroom.app as unknown as { registeredRoutes: Array<{ url: string; schema: unknown }> }
      ).registeredRoutes;
      let kinds = 0;
      for (const route of routes) {
        assertSame(
          route.schema,
          rebuild(route.schema, () => kinds++),
          route.url,
        );
      }
      assert.ok(kinds > 500, `${kinds} schemas compared`);
    });
  });
});

type Node = Record<string, unknown>;

/** The schema built again with TypeBox from what it holds (containers that are not schemas copied). */
function rebuild(node: unknown, counted: () => void): unknown {
  if (Array.isArray(node)) return node.map((item) => rebuild(item, counted));
  if (node === null || typeof node !== "object") return node;
  const schema = node as Node;
  const again = (value: unknown) => rebuild(value, counted) as never;
  const options = (...built: string[]) =>
    Object.fromEntries(Object.entries(schema).filter(([key]) => !built.includes(key))) as never;
  let result: unknown;
  switch (schema["~kind"]) {
    case undefined:
      // Not a schema (a route's `response`), or one copied by spreading (resource.ts's fields).
      result = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, again(value)]));
      return schema["~optional"] === true ? TypeBox.Optional(result as never) : result;
    case "String":
      result = TypeBox.String(options("type"));
      break;
    case "Integer":
      result = TypeBox.Integer(options("type"));
      break;
    case "Boolean":
      result = TypeBox.Boolean(options("type"));
      break;
    case "Null":
      result = TypeBox.Null(options("type"));
      break;
    case "Unknown":
      result = TypeBox.Unknown(options());
      break;
    case "Literal":
      result = TypeBox.Literal(schema.const as string, options("type", "const"));
      break;
    case "Array":
      result = TypeBox.Array(again(schema.items), options("type", "items"));
      break;
    case "Union":
      result = TypeBox.Union(again(schema.anyOf), options("anyOf"));
      break;
    case "Record":
      result = TypeBox.Record(
        TypeBox.String(),
        again((schema.patternProperties as Node)["^.*$"]),
        options("type", "patternProperties"),
      );
      break;
    case "Object":
      result = TypeBox.Object(again(schema.properties), options("type", "required", "properties"));
      break;
    default:
      assert.fail(`a schema of kind ${String(schema["~kind"])}, which model/type.ts does not build`);
  }
  counted();
  return schema["~optional"] === true ? TypeBox.Optional(result as never) : result;
}

/** The same keys in the same order, with the same descriptors, down to every value. */
function assertSame(ours: unknown, theirs: unknown, path: string): void {
  if (ours === null || typeof ours !== "object") {
    assert.equal(ours, theirs, path);
    return;
  }
  assert.ok(theirs !== null && typeof theirs === "object", `${path} is an object on both sides`);
  assert.equal(Object.getPrototypeOf(ours), Object.getPrototypeOf(theirs), `${path}: prototype`);
  assert.equal(Object.isFrozen(ours), Object.isFrozen(theirs), `${path}: frozen`);
  // Fastify marks the schemas it has read with a symbol of its own; TypeBox sets none.
  const keys = Reflect.ownKeys(ours).filter((key) => typeof key === "string");
  assert.deepEqual(keys, Reflect.ownKeys(theirs), `${path}: keys`);
  for (const key of keys) {
    const a = Object.getOwnPropertyDescriptor(ours, key) as PropertyDescriptor;
    const b = Object.getOwnPropertyDescriptor(theirs, key) as PropertyDescriptor;
    const at = `${path}.${String(key)}`;
    assert.deepEqual(
      [a.enumerable, a.writable, a.configurable],
      [b.enumerable, b.writable, b.configurable],
      at,
    );
    assertSame(a.value, b.value, at);
  }
}
