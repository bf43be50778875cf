import type { FastifyReply, FastifyRequest } from "fastify";
import Type, { type TProperties, type TSchema } from "typebox";
import { ApiError, type ErrorKind } from "../../domain/errors.js";
import type { Resource } from "../../model/resource.js";
import { PagingQuery, pagingFields, pagingListSchema, parsePageRequest } from "../paging.js";
import { sendList } from "../representation.js";
import { AccountParams, errorResponses, FORM_AND_JSON, JSON_AND_XML, NoQuery } from "../route-schemas.js";

/**
 * What the routes of an account's resources (`/Accounts/{AccountSid}/Domains`, `…/Webhooks`) share:
 * their URL parameters, the list's query and answer, bodies that may be absent, required parameters
 * with Restcomm's message, and the schema of a route on one resource.
 */

/** `{accountSid, sid}` of one resource (`noun`'s SID starts with `prefix`), and `more` below it. */
export function resourceParams<More extends TProperties = Record<never, never>>(
  noun: string,
  prefix: string,
  more?: More,
) {
  return Type.Object({
    ...AccountParams.properties,
    sid: Type.String({ description: `The ${noun}'s SID (${prefix}…).` }),
    ...(more as More),
  });
}

/** A POST that takes no parameters: an empty form or JSON object, or no body at all. */
export const NoBody = Type.Object({}, { additionalProperties: false });

/** A list's query: Restcomm's paging, nothing else. */
export const ListQuery = Type.Object({ ...PagingQuery }, { additionalProperties: false });

/** A POST's body may be absent (nothing to change): validate it as an empty object instead of null. */
export async function absentBodyIsEmpty(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/**
 * A POST's preValidation: an absent body is empty, and each of `names` must be given, refused with
 * Restcomm's message for a missing parameter (`{name} can not be null{why}.`) before the schema's.
 */
export function requireParameters(kind: ErrorKind, names: readonly string[], why = "") {
  return async (request: FastifyRequest): Promise<void> => {
    await absentBodyIsEmpty(request);
    const body = request.body as Record<string, unknown>;
    for (const name of names) {
      if (body[name] === undefined || body[name] === null) {
        throw new ApiError(kind, `${name} can not be null${why}.`);
      }
    }
  };
}

export interface RouteDoc {
  summary: string;
  description?: string;
}

/** The schemas of the routes on one kind of resource, tagged `tags`, answering `item`. */
export function resourceSchemas(tags: string[], item: TSchema) {
  const one = { 200: item, ...errorResponses };
  const common = (params: TSchema, doc: RouteDoc, querystring: TSchema = NoQuery) => ({
    tags,
    ...doc,
    params,
    querystring,
  });
  return {
    /**
     * A route that takes no query and answers one resource (or `response`); with a `body`, form or
     * JSON, which may be absent (or checked by `preValidation`, requireParameters).
     */
    route(
      params: TSchema,
      doc: RouteDoc,
      options: {
        body?: TSchema;
        response?: Record<number, TSchema>;
        preValidation?: (request: FastifyRequest) => Promise<void>;
      } = {},
    ) {
      const { body, response = one, preValidation = absentBodyIsEmpty } = options;
      const withBody = body === undefined ? {} : { body, consumes: FORM_AND_JSON };
      return {
        schema: { ...common(params, doc), ...withBody, produces: JSON_AND_XML, response },
        ...(body === undefined ? {} : { preValidation }),
      };
    },
    /** A DELETE, answered 204 without a body. */
    deletion(params: TSchema, doc: RouteDoc) {
      const response = { 204: Type.Null({ description: "Deleted." }), ...errorResponses };
      return { schema: { ...common(params, doc), response } };
    },
    /** A paged list, its items `listed` under `jsonKey`. */
    list(params: TSchema, doc: RouteDoc, jsonKey: string, listed: TSchema = item) {
      const response = { 200: pagingListSchema(jsonKey, listed), ...errorResponses };
      return { schema: { ...common(params, doc, ListQuery), produces: JSON_AND_XML, response } };
    },
  };
}

/**
 * Answers one page of a list with Restcomm's paging: `path` is the list's URL without `.json`, `fetch`
 * reads `limit` rows from `offset` (and the total), `render` gives each row's fields.
 */
export async function sendPage<Row>(
  request: FastifyRequest,
  reply: FastifyReply,
  list: {
    element: string;
    jsonKey: string;
    path: string;
    fetch(offset: number, limit: number): Promise<{ rows: Row[]; total: number }>;
    render(row: Row): Resource;
  },
): Promise<FastifyReply> {
  const page = parsePageRequest(request.query as Record<string, unknown>);
  const result = await list.fetch(page.page * page.pageSize, page.pageSize);
  return sendList(request, reply, {
    element: list.element,
    jsonKey: list.jsonKey,
    paging: pagingFields(`${list.path}.json`, [], page, result.total, result.rows.length),
    items: result.rows.map((row) => list.render(row)),
  });
}
