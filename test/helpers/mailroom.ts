import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { type Config, loadConfig } from "../../src/config/config.js";
import { ROOT_ROLE } from "../../src/domain/accounts.js";
import { createLogger, createMailroom, type Mailroom } from "../../src/server.js";
import { createTestSchema } from "./postgres.js";
import type { StoreKind } from "./stores.js";

export const API = "/restcomm/2012-04-24";

export interface Credentials {
  sid: string;
  token: string;
}

export interface TestServer {
  url: string;
  mailroom: Mailroom;
  admin: Credentials;
  dataDir: string;
  databaseUrl: string | undefined;
  /**
   * Creates an account as the operator would (a sub-account of `parent` when given) and returns its
   * credentials. The first one, `admin`, is an Administrator, as `serve` creates it on a fresh store.
   */
  createAccount(email: string, parent?: string, role?: string): Promise<Credentials>;
  close(): Promise<void>;
  /** Removes the temp data dir and drops the PostgreSQL schema this server created. */
  removeData(): Promise<void>;
}

export interface StartOptions {
  store?: StoreKind;
  /** MAILROOM_* settings, as the environment would give them. */
  env?: Record<string, string>;
  /** Reuse an existing data dir / database (to test restarts). */
  dataDir?: string;
  databaseUrl?: string;
  /** Keep the data dir / schema on close (the caller removes it). */
  keepData?: boolean;
  /** The administrator of a reused store; a fresh store gets a new one. */
  admin?: Credentials;
  /** Every log line the server writes, as parsed JSON, is pushed here (the level is then at least info). */
  logLines?: Array<Record<string, unknown>>;
}

/**
 * A second server on the same data as `server` (its database, data dir and admin), as another process
 * would be; closing it leaves the data to `server`. Only on PostgreSQL: an SQLite file has one server.
 */
export function startPeer(server: TestServer): Promise<TestServer> {
  return startMailroom({
    databaseUrl: server.databaseUrl,
    dataDir: server.dataDir,
    admin: server.admin,
    keepData: true,
  });
}

/** Starts a real Mailroom in this process on a random port, with its own temp data dir or schema. */
export async function startMailroom(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "mailroom-test-")));
  let databaseUrl = options.databaseUrl;
  let dropSchema: (() => Promise<void>) | undefined;
  if (options.store === "postgres" && databaseUrl === undefined) {
    const schema = await createTestSchema();
    databaseUrl = schema.url;
    dropSchema = schema.drop;
  }
  const env: Record<string, string> = {
    MAILROOM_HOST: "127.0.0.1",
    MAILROOM_PORT: "0",
    MAILROOM_DATA_DIR: dataDir,
    MAILROOM_LOG_LEVEL: process.env.MAILROOM_TEST_LOG_LEVEL ?? "silent",
    // Test receivers listen on 127.0.0.1; the SSRF tests turn this off to see the refusal.
    MAILROOM_WEBHOOK_ALLOW_PRIVATE: "1",
    ...(databaseUrl ? { MAILROOM_DATABASE_URL: databaseUrl } : {}),
    ...options.env,
  };
  const removeData = async () => {
    await dropSchema?.();
    if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
  };
  let mailroom: Mailroom | undefined;
  let url: string;
  let admin: Credentials;
  const createAccount = async (email: string, parent?: string, role?: string): Promise<Credentials> => {
    const issued = await (mailroom as Mailroom).accounts.create({
      emailAddress: email,
      parentSid: parent ?? null,
      role,
    });
    return { sid: issued.account.sid, token: issued.authToken };
  };
  try {
    const config: Config = loadConfig(env);
    mailroom = await createMailroom(
      config,
      options.logLines ? collectingLogger(config, options.logLines) : undefined,
    );
    url = await mailroom.listen();
    admin = options.admin ?? (await createAccount("admin@test.example", undefined, ROOT_ROLE));
  } catch (error) {
    // A failed start leaves no server, temp dir or schema behind.
    await mailroom?.close().catch(() => {});
    if (!options.keepData) await removeData().catch(() => {});
    throw error;
  }
  const started = mailroom;

  return {
    url,
    mailroom: started,
    admin,
    dataDir,
    databaseUrl,
    createAccount,
    async close() {
      await started.close();
      if (!options.keepData) await removeData();
    },
    removeData,
  };
}

/** The server's own logger (createLogger), at debug level, whose lines land in `lines`. */
function collectingLogger(config: Config, lines: Array<Record<string, unknown>>): FastifyBaseLogger {
  return createLogger(
    { ...config, logLevel: "debug" },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
}

export function basicAuth(credentials: Credentials | { user: string; token: string }): string {
  const user = "sid" in credentials ? credentials.sid : credentials.user;
  return `Basic ${Buffer.from(`${user}:${credentials.token}`).toString("base64")}`;
}

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON
  json: any;
}

/** One HTTP request to a test server; form bodies by default, as Restcomm clients send. */
export async function request(
  server: { url: string },
  method: string,
  path: string,
  options: {
    auth?: Credentials | { user: string; token: string };
    form?: Record<string, string | string[]>;
    json?: unknown;
    /** A multipart/form-data body (fetch sets its Content-Type with the boundary). */
    multipart?: FormData;
    headers?: Record<string, string>;
    body?: string;
  } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth) headers.authorization = basicAuth(options.auth);
  let body: string | FormData | undefined = options.body ?? options.multipart;
  if (options.form) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(options.form)) {
      for (const v of Array.isArray(value) ? value : [value]) params.append(key, v);
    }
    body = params.toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  } else if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(server.url + path, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  if ((response.headers.get("content-type") ?? "").includes("json") && text !== "") json = JSON.parse(text);
  return { status: response.status, headers: response.headers, text, json };
}

/** Sends the Restcomm documentation's example message (overridable field by field). */
export function sendEmail(
  server: { url: string },
  auth: Credentials,
  fields: Record<string, string | string[]> = {},
  format: "json" | "xml" = "json",
  accountSid = auth.sid,
): Promise<ApiResponse> {
  const suffix = format === "json" ? ".json" : "";
  return request(server, "POST", `${API}/Accounts/${accountSid}/Email/Messages${suffix}`, {
    auth,
    form: {
      To: "john.doe@yourcompany.com",
      From: "jane.doe@yourcompany.com",
      Body: "This is a test",
      Subject: "Test Email",
      ...fields,
    },
  });
}
