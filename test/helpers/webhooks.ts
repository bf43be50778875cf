import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { newSid } from "../../src/domain/ids.js";
import { parseSecretKey, SecretBox } from "../../src/domain/secret-box.js";
import { SECRET_KEY_FILE } from "../../src/services/secret-key.js";
import type { StoreLocation } from "../../src/store/open-store.js";
import { API, type Credentials, request } from "./mailroom.js";
import { rawQuery } from "./raw-sql.js";

/** A signing secret as Mailroom issues them: `whsec_` + base64 of 24 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/** Where a test server's data lives, for rawQuery. */
export function locationOf(server: { dataDir: string; databaseUrl: string | undefined }): StoreLocation {
  return { dataDir: server.dataDir, databaseUrl: server.databaseUrl, databasePoolSize: 1 };
}

export interface InsertedWebhook {
  sid: string;
  secret: string;
}

/**
 * Inserts a webhook row straight into the store (as the Webhooks resource would, past its URL check:
 * the SSRF tests need one the check would refuse). `sealSecret` turns the secret into what
 * `secret_sealed` holds; by default it is sealed with the server's key, `secret.key` in its data dir
 * (test servers leave MAILROOM_SECRET_KEY unset), as the resource would seal it.
 */
export async function insertWebhook(
  location: StoreLocation,
  accountSid: string,
  url: string,
  options: {
    events?: string | null;
    enabled?: boolean;
    secret?: string;
    sealSecret?: (s: string) => string;
  } = {},
): Promise<InsertedWebhook> {
  const sid = newSid("WH");
  const secret = options.secret ?? newWebhookSecret();
  const now = Date.now();
  await rawQuery(
    location,
    "insert into webhooks (sid, account_sid, url, events, enabled, secret_sealed, date_created, date_updated) values (?, ?, ?, ?, ?, ?, ?, ?)",
    [
      sid,
      accountSid,
      url,
      options.events ?? null,
      options.enabled === false ? 0 : 1,
      (options.sealSecret ?? sealWithDataDirKey(location))(secret),
      now,
      now,
    ],
  );
  return { sid, secret };
}

/** Seals as a server on this data dir does, with its generated key (src/services/secret-key.ts). */
function sealWithDataDirKey(location: StoreLocation): (secret: string) => string {
  const box = new SecretBox(parseSecretKey(readFileSync(join(location.dataDir, SECRET_KEY_FILE), "utf8")));
  return (secret) => box.seal(secret);
}

/** Creates a webhook through the Webhooks resource, as an application would; returns its SID and secret. */
export async function createWebhook(
  server: { url: string },
  auth: Credentials,
  url: string,
  events?: string,
): Promise<InsertedWebhook> {
  const created = await request(server, "POST", `${API}/Accounts/${auth.sid}/Webhooks.json`, {
    auth,
    form: { Url: url, ...(events ? { Events: events } : {}) },
  });
  if (created.status !== 200 && created.status !== 201) {
    throw new Error(`POST Webhooks: ${created.status} ${created.text}`);
  }
  return { sid: created.json.sid, secret: created.json.secret };
}

/** One request a receiver got. */
export interface ReceivedRequest {
  path: string;
  host: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The status it was answered with; null while unanswered (or never). */
  status: number | null;
}

/** What the receiver answers: a status (and optional body), or "hang" to never answer. */
export type Answer = number | { status: number; body: string } | "hang";

export interface Receiver {
  url: string;
  port: number;
  received: ReceivedRequest[];
  /** Requests open right now (received, connection still open, not answered), in all and per Host. */
  open(): number;
  /** The most requests ever open at once, in all and per Host header. */
  maxOpen: number;
  maxOpenPerHost: Map<string, number>;
  /** Changes how later requests are answered. */
  answer: (request: ReceivedRequest) => Answer;
  close(): Promise<void>;
}

/** A real HTTP endpoint on 127.0.0.1 for webhook and StatusCallback POSTs. */
export async function startReceiver(
  answer: (request: ReceivedRequest) => Answer = () => 204,
): Promise<Receiver> {
  const sockets = new Set<Socket>();
  const openPerHost = new Map<string, number>();
  let open = 0;
  const receiver: Receiver = {
    url: "",
    port: 0,
    received: [],
    open: () => open,
    maxOpen: 0,
    maxOpenPerHost: new Map(),
    answer,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    open += 1;
    openPerHost.set(host, (openPerHost.get(host) ?? 0) + 1);
    receiver.maxOpen = Math.max(receiver.maxOpen, open);
    receiver.maxOpenPerHost.set(
      host,
      Math.max(receiver.maxOpenPerHost.get(host) ?? 0, openPerHost.get(host) ?? 0),
    );
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      open -= 1;
      openPerHost.set(host, (openPerHost.get(host) ?? 1) - 1);
    };
    res.on("close", done);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request: ReceivedRequest = {
        path: req.url ?? "",
        host,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        status: null,
      };
      receiver.received.push(request);
      const reply = receiver.answer(request);
      if (reply === "hang") return;
      const { status, body } = typeof reply === "number" ? { status: reply, body: "" } : reply;
      request.status = status;
      res.statusCode = status;
      res.end(body);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}`;
  return receiver;
}

/** A webhook body as Mailroom sends it. */
export interface WebhookBody {
  type: string;
  timestamp: string;
  data: Record<string, string | number> & { event_sid: string; message_sid: string; account_sid: string };
}

/** Verifies a received webhook with the standardwebhooks package; throws if the signature is wrong. */
export function verifyDelivery(secret: string, request: ReceivedRequest): WebhookBody {
  return new Webhook(secret).verify(request.body, request.headers as Record<string, string>) as WebhookBody;
}
