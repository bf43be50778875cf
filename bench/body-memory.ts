/**
 * Peak memory under large request bodies (issue 12, item 8): N clients each POST one ~10 MB message at
 * once to a `mailroom serve` process relaying to the bench's SMTP sink, and the server's peak RSS
 * (VmHWM) is read from /proc. A measurement, not a test: the figure depends on the machine.
 *
 *   npm run build && node dist/bench/body-memory.js [form|json|multipart] [clients] [megabytes]
 *
 * A 503 (MAILROOM_BODY_MEMORY full) is retried after its Retry-After, up to 10 tries per client; the
 * statuses count every answer. MAILROOM_* variables in the environment reach the server (e.g.
 * MAILROOM_BODY_MEMORY, MAILROOM_DELIVERY_MEMORY).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cleanupAll } from "./cleanup.js";
import { createAccount, startMailroom } from "./mailroom.js";
import { startSink, waitForMessages } from "./sink.js";

type Shape = "form" | "json" | "multipart";

const shape = (process.argv[2] ?? "json") as Shape;
const clients = Number(process.argv[3] ?? 16);
const megabytes = Number(process.argv[4] ?? 10);

function requestBody(bytes: number): { body: string | FormData; headers: Record<string, string> } {
  const fields = { From: "jane@example.com", To: "john@example.com", Subject: "Large" };
  if (shape === "form") {
    // A large text Body: every byte is a parameter the server must parse.
    const params = new URLSearchParams({ ...fields, Body: "x".repeat(bytes) });
    return { body: params.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } };
  }
  // Attachments: base64 in JSON (4/3 of the bytes on the wire), raw in multipart.
  const attachment = Buffer.alloc(shape === "json" ? Math.floor((bytes * 3) / 4) : bytes, 7);
  if (shape === "json") {
    const json = JSON.stringify({
      ...fields,
      Body: "see attachment",
      Attachments: [
        {
          Filename: "data.bin",
          ContentType: "application/octet-stream",
          Content: attachment.toString("base64"),
        },
      ],
    });
    return { body: json, headers: { "content-type": "application/json" } };
  }
  const form = new FormData();
  for (const [key, value] of Object.entries({ ...fields, Body: "see attachment" })) form.append(key, value);
  form.append("Attachment", new Blob([attachment], { type: "application/octet-stream" }), "data.bin");
  return { body: form, headers: {} };
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), "mailroom-body-memory-"));
  const sink = await startSink("node");
  const target = { dataDir, databaseUrl: undefined };
  const account = await createAccount(target, "memory@bench.example");
  const server = await startMailroom(target, sink.port);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idle = server.peakRssKb();
    const auth = `Basic ${Buffer.from(`${account.sid}:${account.authToken}`).toString("base64")}`;
    const url = `${server.baseUrl}/restcomm/2012-04-24/Accounts/${account.sid}/Email/Messages.json`;
    const statuses = new Map<number, number>();
    const started = Date.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        // As a well-behaved client does: a 503 is tried again after its Retry-After, a few times.
        for (let attempt = 1; attempt <= 10; attempt++) {
          const { body, headers } = requestBody(megabytes * 1_000_000);
          const response = await fetch(url, {
            method: "POST",
            headers: { ...headers, authorization: auth },
            body,
          });
          await response.arrayBuffer();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
          if (response.status !== 503) break;
          const seconds = Number(response.headers.get("retry-after") ?? 1);
          await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        }
      }),
    );
    const answered = Date.now() - started;
    const accepted = statuses.get(200) ?? 0;
    const delivered = await waitForMessages(sink, accepted, 120_000);
    server.assertAlive();
    const peak = server.peakRssKb();
    const mb = (kb: number | undefined) => (kb === undefined ? "n/a" : `${Math.round(kb / 1024)} MB`);
    console.log(
      JSON.stringify({
        shape,
        clients,
        megabytesEach: megabytes,
        statuses: Object.fromEntries(statuses),
        answeredMs: answered,
        allDelivered: delivered,
        peakRssIdle: mb(idle),
        peakRss: mb(peak),
      }),
    );
  } finally {
    await server.stop();
    await sink.close();
    await rm(dataDir, { recursive: true, force: true });
    await cleanupAll();
  }
}

await main();
