import type { FastifyReply, FastifyRequest } from "fastify";

/** Read and dropped after an early answer, at most: more than that, and the connection is closed. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** …and for at most this long (nginx's lingering_time is 30 s). */
const DRAIN_MAX_MS = 10_000;

/**
 * An error answered before the request's body was read (413, 503, 415…): keeps reading the rest of
 * the body, dropping it, instead of closing the connection at once. A client that sends its whole
 * body before it reads the answer (Python's urllib, many others) otherwise gets a broken pipe, and the
 * reset discards the answer it never read: a 413 nobody can see. Up to DRAIN_MAX_BYTES and
 * DRAIN_MAX_MS, as nginx's lingering close does; after that the connection is cut. Once the body has
 * been read the connection stays usable (HTTP keep-alive), so nothing else changes for the client.
 */
export function drainUnreadBody(request: FastifyRequest, reply: FastifyReply): void {
  const raw = request.raw;
  if (raw.complete || raw.destroyed) return;
  const declared = Number(raw.headers["content-length"]);
  // Too much to read for nothing: the connection closes after the answer, as Fastify decided.
  if (declared > DRAIN_MAX_BYTES) return;
  // Fastify asks to close after a body error; Node would then cut the connection with the body unread.
  reply.removeHeader("connection");
  let read = 0;
  const cut = () => raw.socket?.destroy();
  const timer = setTimeout(cut, DRAIN_MAX_MS);
  timer.unref();
  raw.on("data", (chunk: Buffer) => {
    read += chunk.length;
    if (read > DRAIN_MAX_BYTES) cut();
  });
  raw.once("close", () => clearTimeout(timer));
  raw.resume();
}
