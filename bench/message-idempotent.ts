/**
 * The Idempotency-Key row (issue 14): the plain row's request with a new key on every request, so that
 * each one is a send (a repeated key would be a replay, which sends nothing). After the run, one key is
 * sent twice to show the server honoured the header: the repeat is a replay and the sink gets one message.
 */
import { randomUUID } from "node:crypto";
import type { Credentials } from "./mailroom.js";
import { type HttpRequestSpec, sendEmailRequest } from "./message.js";
import { type Sink, waitForMessages } from "./sink.js";

const KEY = "idempotency-key";

/** The plain row's form request; each request's own Idempotency-Key is a UUID, as clients make them. */
export function idempotentRequest(credentials: Credentials, bodyBytes: number): HttpRequestSpec {
  return { ...sendEmailRequest(credentials, bodyBytes), headersFor: () => ({ [KEY]: randomUUID() }) };
}

async function send(baseUrl: string, request: HttpRequestSpec, key: string) {
  const body = typeof request.body === "string" ? request.body : new Uint8Array(request.body());
  const response = await fetch(`${baseUrl}${request.path}`, {
    method: "POST",
    headers: { ...request.headers, [KEY]: key },
    body,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`a send with an Idempotency-Key failed: ${response.status} ${text}`);
  const { sid } = JSON.parse(text) as { sid: string };
  return { sid, replayed: response.headers.get("idempotent-replayed") === "true" };
}

/**
 * Sends one request twice with the same key and throws unless the first is a send and the second a
 * replay of it (same SID, `Idempotent-Replayed: true`) and the sink got exactly one message for the two.
 * Run it after the measured delivery, with nothing else in flight: it moves the sink's count by one.
 */
export async function checkReplay(
  baseUrl: string,
  request: HttpRequestSpec,
  sink: Sink,
  timeoutMs: number,
): Promise<string> {
  const before = sink.counts().messages;
  const key = randomUUID();
  const first = await send(baseUrl, request, key);
  const repeat = await send(baseUrl, request, key);
  if (first.replayed)
    throw new Error("the first request with a new Idempotency-Key was answered as a replay");
  if (!repeat.replayed || repeat.sid !== first.sid) {
    throw new Error(
      `the repeat of a key was not a replay (sid ${repeat.sid} for ${first.sid}, replayed ${repeat.replayed})`,
    );
  }
  if (!(await waitForMessages(sink, before + 1, timeoutMs))) {
    throw new Error("the message of the replay check never arrived at the sink");
  }
  // Long enough for a second delivery, had the repeat sent one, to arrive from an idle server.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const arrived = sink.counts().messages - before;
  if (arrived !== 1) throw new Error(`a key sent twice delivered ${arrived} messages, not 1`);
  return `one key sent twice: ${first.sid} once at the sink, the repeat replayed`;
}
