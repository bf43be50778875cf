/** The test email: the same ~1 KB body for the HTTP side as smtp-source sends on the SMTP side. */
import type { Credentials } from "./mailroom.js";

export const API_PATH = (sid: string) => `/restcomm/2012-04-24/Accounts/${sid}/Email/Messages.json`;

const WORDS =
  "Mailroom bench message. The quick brown fox jumps over the lazy dog while the queue drains steadily. ";

/** ASCII text of exactly `bytes` bytes, in lines of at most 76 characters. */
export function bodyText(bytes: number): string {
  let text = "";
  let line = "";
  while (text.length + line.length < bytes) {
    for (const word of WORDS.split(" ")) {
      if (line.length + word.length + 1 > 76) {
        text += `${line.trimEnd()}\n`;
        line = "";
      }
      line += `${word} `;
    }
  }
  return (text + line).slice(0, bytes);
}

export interface HttpRequestSpec {
  path: string;
  headers: Record<string, string>;
  /**
   * The body of every request, or a function that makes each request's own body (for content that
   * must differ from one message to the next). A fixed body is built once and costs the harness nothing.
   */
  body: string | (() => Buffer);
  /** Headers that differ in every request (an Idempotency-Key), added to `headers`. */
  headersFor?: () => Record<string, string>;
}

/** Each request's body: a fixed one is encoded once and reused. */
export function bodyMaker(body: HttpRequestSpec["body"]): () => Buffer {
  if (typeof body !== "string") return body;
  const fixed = Buffer.from(body);
  return () => fixed;
}

/** The envelope and subject every row sends. */
export const ENVELOPE = {
  From: "bench@example.com",
  To: "recipient@example.net",
  Subject: "Mailroom bench message",
};

/** POST .../Email/Messages.json, HTTP Basic auth with the account SID and AuthToken. */
export function apiRequest(
  credentials: Credentials,
  contentType: string,
  body: HttpRequestSpec["body"],
): HttpRequestSpec {
  const auth = Buffer.from(`${credentials.sid}:${credentials.authToken}`).toString("base64");
  return {
    path: API_PATH(credentials.sid),
    headers: { "content-type": contentType, authorization: `Basic ${auth}` },
    body,
  };
}

/** The plain row's request: form-encoded, one text/plain body of `bodyBytes`. */
export function sendEmailRequest(credentials: Credentials, bodyBytes: number): HttpRequestSpec {
  const body = new URLSearchParams({ ...ENVELOPE, Body: bodyText(bodyBytes) }).toString();
  return apiRequest(credentials, "application/x-www-form-urlencoded", body);
}
