import Type from "typebox";

/** Schemas every route shares: the account in the URL, error answers, and the formats spoken. */
export const AccountParams = Type.Object({
  accountSid: Type.String({ description: "The account's SID (AC…) or email address." }),
});

/** The query of a route that takes none: anything in it is an unknown parameter (20009). */
export const NoQuery = Type.Object({}, { additionalProperties: false });

export const ErrorBody = Type.Object(
  {
    status: Type.Integer({ description: "The HTTP status." }),
    code: Type.Integer({ description: "A stable Mailroom error code (docs/errors.md)." }),
    message: Type.String({ description: "What went wrong and what to change." }),
    more_info: Type.String({ description: "Where the code is explained." }),
  },
  { description: "An error. In XML: <RestcommResponse><RestException>…" },
);

/** The error answers of an authenticated route (401 has an empty body, as Restcomm's). */
export const errorResponses = {
  400: ErrorBody,
  401: Type.Null({ description: "Missing or wrong credentials: empty body, WWW-Authenticate: Basic." }),
  403: ErrorBody,
  404: ErrorBody,
  413: ErrorBody,
  415: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

/** XML is Restcomm's default; `.json` on the path or `Accept: application/json` selects JSON. */
export const JSON_AND_XML = ["application/json", "application/xml"];
export const FORM_AND_JSON = ["application/x-www-form-urlencoded", "application/json"];
export const SEND_BODY_TYPES = [...FORM_AND_JSON, "multipart/form-data"];
