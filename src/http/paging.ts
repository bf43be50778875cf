import Type, { type TSchema } from "typebox";
import { ApiError } from "../domain/errors.js";
import { quoteInput } from "../domain/quote.js";
import type { Fields } from "../model/resource.js";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** Restcomm's paging parameters, for a list route's query schema. */
export const PagingQuery = {
  Page: Type.Optional(Type.String({ description: "Zero-based page number (default 0)." })),
  PageSize: Type.Optional(Type.String({ description: "Items per page (default 50, at most 1000)." })),
};

/** The JSON shape of a paged list: Restcomm's paging fields, then the items under `key`. */
export function pagingListSchema(key: string, item: TSchema) {
  const text = Type.String();
  const nullableText = Type.Union([Type.String(), Type.Null()]);
  return Type.Object({
    page: Type.Integer(),
    num_pages: Type.Integer(),
    page_size: Type.Integer(),
    total: Type.Integer(),
    start: Type.Integer(),
    end: Type.Integer(),
    uri: text,
    first_page_uri: text,
    previous_page_uri: Type.Optional(nullableText),
    next_page_uri: Type.Optional(nullableText),
    last_page_uri: text,
    [key]: Type.Array(item),
  });
}

export interface PageRequest {
  page: number;
  pageSize: number;
}

function wholeNumber(name: string, raw: unknown, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  if (typeof raw !== "string" || !/^\d{1,9}$/.test(raw)) {
    throw new ApiError(
      "InvalidPaging",
      `${name} must be a whole number of 0 or more, got ${quoteInput(String(raw))}.`,
    );
  }
  return Number(raw);
}

/** Restcomm paging: `Page` is zero-based (default 0), `PageSize` defaults to 50 and is capped. */
export function parsePageRequest(query: Record<string, unknown>): PageRequest {
  const page = wholeNumber("Page", query.Page, 0);
  const pageSize = wholeNumber("PageSize", query.PageSize, DEFAULT_PAGE_SIZE);
  if (pageSize < 1) throw new ApiError("InvalidPaging", "PageSize must be at least 1.");
  if (pageSize > MAX_PAGE_SIZE) {
    throw new ApiError(
      "PageSizeTooLarge",
      `PageSize ${pageSize} is above the maximum of ${MAX_PAGE_SIZE}; page through instead.`,
    );
  }
  return { page, pageSize };
}

/**
 * The paging fields of a list response. `uri`s keep the caller's filters so following
 * `next_page_uri` walks the same result set. A page past the end is empty, not an error.
 */
export function pagingFields(
  path: string,
  filters: ReadonlyArray<readonly [string, string]>,
  request: PageRequest,
  total: number,
  itemsOnPage: number,
): Fields {
  const numPages = Math.max(1, Math.ceil(total / request.pageSize));
  const lastPage = numPages - 1;
  const start = request.page * request.pageSize;
  const uri = (page: number) => {
    const query = new URLSearchParams(filters.map(([key, value]) => [key, value]));
    query.set("Page", String(page));
    query.set("PageSize", String(request.pageSize));
    return `${path}?${query.toString()}`;
  };
  return [
    ["page", request.page],
    ["num_pages", numPages],
    ["page_size", request.pageSize],
    ["total", total],
    ["start", start],
    ["end", itemsOnPage === 0 ? start : start + itemsOnPage - 1],
    ["uri", uri(request.page)],
    ["first_page_uri", uri(0)],
    ["previous_page_uri", request.page > 0 ? uri(Math.min(request.page - 1, lastPage)) : null],
    ["next_page_uri", request.page < lastPage ? uri(request.page + 1) : null],
    ["last_page_uri", uri(lastPage)],
  ];
}
