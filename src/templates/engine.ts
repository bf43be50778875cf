import { createRequire } from "node:module";
import type Handlebars from "handlebars";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";

/**
 * The template engine: Handlebars 4.7 in an environment of its own (docs/api.md#templates says why
 * Handlebars). A template may write variables (`{{user.name}}`, `{{{raw}}}`) and use the blocks
 * #if, #unless, #each and #with; nothing else (no partials, decorators, other helpers or
 * subexpressions), and that is checked when the template is saved, with the line and column.
 *
 * Every variable a template writes goes through one helper of ours (`__out`, put in place of each
 * `{{ }}` before compiling): it escapes for HTML where Handlebars would, counts what is written, and
 * in strict mode refuses a missing variable by name and place. So a render is bounded: a template
 * of 20,000 `{{a}}` with a large `a` stops at the budget instead of filling the heap, and so does a
 * nest of #each blocks over long arrays.
 */

export type TemplateField = "Subject" | "Html" | "Text";

/** What one render may write through variables, and how many #each iterations it may run. */
export const MAX_RENDER_WRITTEN = 1_000_000;
export const MAX_RENDER_ITERATIONS = 10_000;
/** The longest a rendered part may be (characters), variables and the template's own text together. */
export const MAX_RENDERED_LENGTH = 1_000_000;

const BLOCK_HELPERS = new Set(["if", "unless", "each", "with"]);
const OUT_HELPER = "__out";

/** A compiled part: renders with `data`; strict refuses a missing variable. */
export type CompiledPart = (data: Record<string, unknown>, strict: boolean) => string;

interface RenderState {
  strict: boolean;
  written: number;
  iterations: number;
}

// Rendering is synchronous, so the render in progress is known here while its helpers run.
let active: RenderState | undefined;

/**
 * Handlebars and this environment, made at the first template checked or compiled: Handlebars holds
 * about 2 MB of heap (its sources and parser), which every major GC of the main thread marks, in
 * installations that never use a template. Loaded with require (it is CommonJS) so checking and
 * compiling stay synchronous.
 */
let engine: { Handlebars: typeof Handlebars; env: typeof Handlebars } | undefined;

function handlebars(): { Handlebars: typeof Handlebars; env: typeof Handlebars } {
  engine ??= createEngine(createRequire(import.meta.url)("handlebars") as typeof Handlebars);
  return engine;
}

function createEngine(hbs: typeof Handlebars): { Handlebars: typeof Handlebars; env: typeof Handlebars } {
  const env = hbs.create();
  env.unregisterHelper("log");
  env.unregisterHelper("lookup");
  const builtinEach = env.helpers.each as Handlebars.HelperDelegate;
  env.registerHelper("each", function (this: unknown, context: unknown, options: Handlebars.HelperOptions) {
    const fn = options.fn;
    const counted = Object.assign((item: unknown, more?: Handlebars.RuntimeOptions) => {
      const state = active;
      if (state && ++state.iterations > MAX_RENDER_ITERATIONS) {
        throw new RenderLimit(`runs more than ${MAX_RENDER_ITERATIONS} #each iterations`);
      }
      return fn(item, more);
    }, fn);
    return builtinEach.call(this, context, { ...options, fn: counted });
  });
  env.registerHelper(
    OUT_HELPER,
    (value: unknown, name: string, escapeHtml: boolean, line: number, column: number) => {
      const state = active;
      if (value === undefined && state?.strict) throw new MissingVariable(name, line, column);
      const text = escapeHtml ? env.escapeExpression(value as string) : value == null ? "" : String(value);
      if (state) {
        state.written += text.length;
        if (state.written > MAX_RENDER_WRITTEN) {
          throw new RenderLimit(`writes more than ${MAX_RENDER_WRITTEN} characters through variables`);
        }
      }
      return text;
    },
  );
  return { Handlebars: hbs, env };
}

const COMPILE_OPTIONS: CompileOptions = {
  noEscape: true,
  strict: false,
  knownHelpersOnly: true,
  knownHelpers: {
    [OUT_HELPER]: true,
    if: true,
    unless: true,
    each: true,
    with: true,
    log: false,
    lookup: false,
  },
};
type CompileOptions = NonNullable<Parameters<typeof Handlebars.compile>[1]>;

class MissingVariable extends Error {
  constructor(
    readonly variable: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${variable} is missing`);
  }
}

class RenderLimit extends Error {}

/**
 * Checks a template part as it is saved: its syntax (a 400 naming the field, line and column),
 * that it uses only what Mailroom allows, and that it compiles.
 */
export function checkTemplateSource(field: TemplateField, source: string): void {
  const ast = prepare(field, source);
  try {
    // Compiling is lazy in Handlebars (at the first render): precompile makes every compile error show now.
    handlebars().env.precompile(ast, COMPILE_OPTIONS);
  } catch (error) {
    throw syntaxError(field, error);
  }
}

/** Compiles a part that checkTemplateSource accepted when it was saved. */
export function compileTemplatePart(field: TemplateField, source: string): CompiledPart {
  const template = handlebars().env.compile(prepare(field, source), COMPILE_OPTIONS);
  return (data, strict) => render(field, template, data, strict);
}

/** The part's syntax tree, checked, with `__out` in place of each `{{ }}`. */
function prepare(field: TemplateField, source: string): hbs.AST.Program {
  const ast = parseSource(field, source);
  rewrite(field, ast.body, field === "Html");
  return ast;
}

function render(
  field: TemplateField,
  template: Handlebars.TemplateDelegate,
  data: Record<string, unknown>,
  strict: boolean,
): string {
  const state: RenderState = { strict, written: 0, iterations: 0 };
  const outer = active;
  active = state;
  let result: string;
  try {
    result = template(data, { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false });
  } catch (error) {
    throw renderError(field, error);
  } finally {
    active = outer;
  }
  if (result.length > MAX_RENDERED_LENGTH) {
    throw tooLarge(field, `is over ${MAX_RENDERED_LENGTH} characters long once rendered`);
  }
  return result;
}

function renderError(field: TemplateField, error: unknown): ApiError {
  if (error instanceof MissingVariable) {
    return new ApiError(
      "TemplateVariableMissing",
      `TemplateData has no ${quoteInput(error.variable)}, which the template's ${field} uses at line ${error.line}, column ${error.column + 1} (TemplateStrict=true). Give it in TemplateData, or send TemplateStrict=false to render it empty.`,
    );
  }
  if (error instanceof RenderLimit) return tooLarge(field, error.message);
  // A string past V8's longest: static text repeated by #each (rope concatenation, so no memory).
  if (error instanceof RangeError) return tooLarge(field, `is over ${MAX_RENDERED_LENGTH} characters long`);
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(
    "TemplateRenderFailed",
    `The template's ${field} could not be rendered with this TemplateData: ${quoteInput(message)}.`,
  );
}

function tooLarge(field: TemplateField, what: string): ApiError {
  return new ApiError(
    "TemplateRenderFailed",
    `The template's ${field} ${what} with this TemplateData; the limits are ${MAX_RENDERED_LENGTH} characters rendered, ${MAX_RENDER_WRITTEN} written by variables and ${MAX_RENDER_ITERATIONS} #each iterations. Send less data, or a smaller template.`,
  );
}

/** Handlebars's own parser, whose lexer keeps the position of the token it stopped at. */
function parser(): { lexer: { yylloc?: Location; match?: string } } {
  return (handlebars().Handlebars as unknown as { Parser: { lexer: { yylloc?: Location; match?: string } } })
    .Parser;
}

interface Location {
  first_line: number;
  first_column: number;
}

function parseSource(field: TemplateField, source: string): hbs.AST.Program {
  try {
    return handlebars().env.parse(source);
  } catch (error) {
    throw syntaxError(field, error);
  }
}

/**
 * A 400 that names the field, the line and the column (from 1). Handlebars's compile errors carry
 * their place (`lineNumber`, `column` from 0); its parser's say "Parse error on line N" in words, and
 * the place is where its lexer stopped (parsing is synchronous: nothing else used the lexer since).
 */
function syntaxError(field: TemplateField, error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const placed = error as { lineNumber?: number; column?: number };
  let line: number | undefined;
  let column: number | undefined;
  let what: string;
  if (typeof placed.lineNumber === "number" && typeof placed.column === "number") {
    line = placed.lineNumber;
    column = placed.column;
    what = message.replace(/ - \d+:\d+$/, "");
  } else {
    const at = parser().lexer.yylloc;
    line = at?.first_line;
    column = at?.first_column;
    const match = parser().lexer.match ?? "";
    what = /got 'EOF'/.test(message)
      ? "the template ends before a {{ }} or a block is closed"
      : /^Lexical error/.test(message)
        ? "a {{ that does not start a valid expression (an unclosed {{!-- comment?)"
        : match === ""
          ? "unexpected text"
          : `unexpected ${quoteInput(match)}`;
  }
  const place = line === undefined || column === undefined ? "" : ` at line ${line}, column ${column + 1}`;
  return new ApiError("TemplateSyntaxError", `${field} has a template syntax error${place}: ${what}.`);
}

/** A refusal of something the template uses, at the node's place. */
function refuse(field: TemplateField, node: hbs.AST.Node, what: string): ApiError {
  const { line, column } = node.loc.start;
  return new ApiError(
    "TemplateSyntaxError",
    `${field} has ${what} at line ${line}, column ${column + 1}; a template may write variables ({{name}}, {{{name}}} unescaped) and use the blocks #if, #unless, #each and #with, nothing else.`,
  );
}

/**
 * Checks every statement and puts `__out` in place of each `{{ }}`: `{{a.b}}` becomes
 * `{{__out a.b "a.b" escape line column}}` (escape: Html's `{{ }}`, never `{{{ }}}`, Subject or Text).
 */
function rewrite(field: TemplateField, body: hbs.AST.Statement[], html: boolean): void {
  for (let i = 0; i < body.length; i++) {
    const node = body[i] as hbs.AST.Statement;
    switch (node.type) {
      case "ContentStatement":
      case "CommentStatement":
        break;
      case "MustacheStatement": {
        const mustache = node as hbs.AST.MustacheStatement;
        if (mustache.path.type !== "PathExpression" || mustache.params.length > 0 || mustache.hash) {
          throw refuse(field, node, "a helper call or a literal in {{ }}");
        }
        const path = mustache.path as hbs.AST.PathExpression;
        const loc = mustache.loc;
        const literal = <T>(type: string, value: T) => ({ type, value, original: value, loc });
        body[i] = {
          ...mustache,
          path: {
            type: "PathExpression",
            data: false,
            depth: 0,
            parts: [OUT_HELPER],
            original: OUT_HELPER,
            loc,
          },
          params: [
            path,
            literal("StringLiteral", path.original),
            literal("BooleanLiteral", html && mustache.escaped),
            literal("NumberLiteral", loc.start.line),
            literal("NumberLiteral", loc.start.column),
          ],
          escaped: false,
        } as hbs.AST.MustacheStatement;
        break;
      }
      case "BlockStatement": {
        const block = node as hbs.AST.BlockStatement;
        const name =
          block.path.type === "PathExpression" ? (block.path as hbs.AST.PathExpression).original : "";
        if (!BLOCK_HELPERS.has(name)) throw refuse(field, node, `the block ${quoteInput(name)}`);
        if (block.params.length !== 1) throw refuse(field, node, `#${name} without exactly one value`);
        checkExpressions(field, [...block.params, ...(block.hash?.pairs.map((pair) => pair.value) ?? [])]);
        rewrite(field, block.program?.body ?? [], html);
        rewrite(field, block.inverse?.body ?? [], html);
        break;
      }
      default:
        throw refuse(field, node, "a partial or decorator");
    }
  }
}

function checkExpressions(field: TemplateField, expressions: hbs.AST.Expression[]): void {
  for (const expression of expressions) {
    if (expression.type === "SubExpression") throw refuse(field, expression, "a subexpression ( … )");
  }
}
