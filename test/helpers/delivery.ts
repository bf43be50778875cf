import { API, type Credentials, request } from "./mailroom.js";
import { waitFor } from "./wait.js";

/** Short retry settings so that delivery tests see several attempts in well under a second. */
export const FAST_RETRIES: Record<string, string> = {
  MAILROOM_RETRY_BASE_MS: "50",
  MAILROOM_RETRY_MAX_MS: "200",
  MAILROOM_POLL_INTERVAL_MS: "200",
};

/**
 * A server in direct-to-MX mode against the test DNS (`dnsServers`: TestDns.servers), every MX host
 * on loopback listening on `mxPort`. The sending-domain policy (on by default in mx mode) is off:
 * tests of it set MAILROOM_REQUIRE_VERIFIED_DOMAIN themselves.
 */
export function mxModeEnv(dnsServers: string, mxPort: number): Record<string, string> {
  return {
    MAILROOM_DELIVERY_MODE: "mx",
    MAILROOM_REQUIRE_VERIFIED_DOMAIN: "0",
    MAILROOM_DNS_SERVERS: dnsServers,
    MAILROOM_MX_ALLOW_PRIVATE: "1",
    MAILROOM_MX_PORT: String(mxPort),
    MAILROOM_HOSTNAME: "mailroom.test.example",
  };
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON
type Json = any;

export async function getMessage(server: { url: string }, auth: Credentials, sid: string): Promise<Json> {
  const response = await request(server, "GET", `${API}/Accounts/${auth.sid}/Email/Messages/${sid}.json`, {
    auth,
  });
  if (response.status !== 200) throw new Error(`GET message ${sid}: ${response.status} ${response.text}`);
  return response.json;
}

export async function getAttempts(server: { url: string }, auth: Credentials, sid: string): Promise<Json[]> {
  const response = await request(
    server,
    "GET",
    `${API}/Accounts/${auth.sid}/Email/Messages/${sid}/Attempts.json`,
    { auth },
  );
  if (response.status !== 200) throw new Error(`GET attempts ${sid}: ${response.status} ${response.text}`);
  // An unpaged list: JSON is the bare array.
  return response.json;
}

/** Waits until the message reaches a final status (sent or failed) and returns it. */
export function waitForFinal(server: { url: string }, auth: Credentials, sid: string): Promise<Json> {
  return waitFor(`message ${sid} to reach sent or failed`, async () => {
    const message = await getMessage(server, auth, sid);
    return message.status === "sent" || message.status === "failed" ? message : undefined;
  });
}
