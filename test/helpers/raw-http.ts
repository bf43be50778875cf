import net from "node:net";
import { API, basicAuth, type Credentials } from "./mailroom.js";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One HTTP/1.1 request over a plain socket, for what fetch cannot do: send a body in parts, keep it
 * unfinished, or write all of it before reading a byte of the answer (as Python's urllib does).
 */
export class RawRequest {
  private readonly socket: net.Socket;
  private readonly received: Buffer[] = [];
  private readonly closed: Promise<void>;
  /** The socket error, if any (EPIPE, ECONNRESET: the server cut the connection). */
  error: Error | undefined;

  constructor(url: string, head: { method: string; path: string; headers: Record<string, string> }) {
    const { hostname, port } = new URL(url);
    this.socket = net.connect(Number(port), hostname);
    this.socket.on("data", (chunk: Buffer) => this.received.push(chunk));
    this.socket.on("error", (error) => {
      this.error ??= error;
    });
    this.closed = new Promise((resolve) => this.socket.once("close", () => resolve()));
    const lines = [`${head.method} ${head.path} HTTP/1.1`, `host: ${hostname}:${port}`];
    for (const [name, value] of Object.entries(head.headers)) lines.push(`${name}: ${value}`);
    this.socket.write(`${lines.join("\r\n")}\r\n\r\n`);
  }

  /** Stops reading: what the server sends waits in the kernel, as with a client busy writing. */
  pauseReading(): void {
    this.socket.pause();
  }

  /** Writes `data` and resolves once it is handed to the kernel (false if the connection failed first). */
  write(data: string | Buffer): Promise<boolean> {
    return new Promise((resolve) => this.socket.write(data, (error) => resolve(!error)));
  }

  /** Reads until the server closes or a whole response (by Content-Length) has arrived. */
  async response(timeoutMs = 10_000): Promise<RawResponse | undefined> {
    return (await this.responses(1, timeoutMs))[0];
  }

  /** Reads until `count` whole responses (pipelined requests) arrived or the server closed. */
  async responses(count: number, timeoutMs = 10_000): Promise<RawResponse[]> {
    this.socket.resume();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const parsed = parseResponses(Buffer.concat(this.received));
      if (parsed.length >= count || this.socket.destroyed || Date.now() > deadline) return parsed;
      await Promise.race([this.closed, new Promise((resolve) => setTimeout(resolve, 20))]);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

function parseResponses(data: Buffer): RawResponse[] {
  const responses: RawResponse[] = [];
  let rest = data;
  for (;;) {
    const parsed = parseResponse(rest);
    if (!parsed) return responses;
    responses.push(parsed.response);
    rest = rest.subarray(parsed.length);
  }
}

function parseResponse(data: Buffer): { response: RawResponse; length: number } | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...headerLines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers["content-length"] ?? 0);
  if (data.length < end + 4 + length) return undefined;
  return {
    response: {
      status: Number((statusLine ?? "").split(" ")[1]),
      headers,
      body: data.subarray(end + 4, end + 4 + length).toString("utf8"),
    },
    length: end + 4 + length,
  };
}

/**
 * A raw form send to the admin's messages: its head is written at once; the body is the caller's to
 * write (in parts, or not at all). `framing` is the Content-Length, or "chunked".
 */
export function rawFormSend(
  server: { url: string; admin: Credentials },
  framing: number | "chunked",
): RawRequest {
  return new RawRequest(server.url, {
    method: "POST",
    path: `${API}/Accounts/${server.admin.sid}/Email/Messages.json`,
    headers: {
      authorization: basicAuth(server.admin),
      "content-type": "application/x-www-form-urlencoded",
      ...(framing === "chunked" ? { "transfer-encoding": "chunked" } : { "content-length": String(framing) }),
    },
  });
}
