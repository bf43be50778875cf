/** The batch row's request: the plain row's message, many to a JSON array, to …/Email/Messages/Batch. */
import type { Credentials } from "./mailroom.js";
import { bodyText, ENVELOPE, type HttpRequestSpec } from "./message.js";

/** Messages per request in the batch row. */
export const BATCH_SIZE = 100;

export function batchRequest(credentials: Credentials, bodyBytes: number, size: number): HttpRequestSpec {
  const auth = Buffer.from(`${credentials.sid}:${credentials.authToken}`).toString("base64");
  const message = { ...ENVELOPE, Body: bodyText(bodyBytes) };
  return {
    path: `/restcomm/2012-04-24/Accounts/${credentials.sid}/Email/Messages/Batch.json`,
    headers: { "content-type": "application/json", authorization: `Basic ${auth}` },
    body: JSON.stringify(Array.from({ length: size }, () => message)),
  };
}
