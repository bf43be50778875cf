import assert from "node:assert/strict";
import { createServer } from "node:net";
import { after, before, describe, test } from "node:test";
import { composeMime } from "../src/delivery/compose.js";
import type { ComposeJob, DispatchJob } from "../src/delivery/dispatch.js";
import { envelopeFor } from "../src/delivery/envelope.js";
import type { DeliveryLogger } from "../src/delivery/logger.js";
import { type RelayThreadApi, ThreadedDispatcher } from "../src/delivery/threaded-dispatcher.js";
import { readStoredContent, storeContent } from "../src/model/email-message.js";
import type { EmailMessageRow } from "../src/store/types.js";
import type { ThreadClient } from "../src/threads/thread-client.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { emailRow, plainContent } from "./helpers/store-rows.js";
import { waitFor } from "./helpers/wait.js";

function row(overrides: Partial<EmailMessageRow> = {}): EmailMessageRow {
  return {
    ...emailRow("AC0123456789abcdef0123456789abcdef"),
    num_attempts: 0,
    ...overrides,
  } as EmailMessageRow;
}

/** The first attempt of a row: compose it from its content. */
function firstAttempt(message: EmailMessageRow): DispatchJob {
  const content = plainContent({ subject: message.subject });
  return {
    envelope: envelopeFor(content, []),
    mime: {
      compose: {
        stored: storeContent(content),
        messageId: message.message_id,
        date: message.date_created,
        attachments: new Map(),
      },
    },
  };
}

/** What composing a row gives (the main thread's answer to compare with). */
function composed(message: EmailMessageRow): Promise<string> {
  const { stored, ...rest } = (firstAttempt(message).mime as { compose: ComposeJob }).compose;
  return composeMime({ ...rest, content: readStoredContent(stored), attachments: new Map() });
}

const quiet = { warn() {} } as unknown as DeliveryLogger;

function settings(url: string) {
  return {
    url,
    poolSize: 2,
    startTls: "opportunistic" as const,
    connectTimeoutMs: 2_000,
    socketTimeoutMs: 5_000,
  };
}

/** A port on loopback that nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("delivery: composing and relaying in the relay thread", () => {
  let sink: SmtpSink;
  before(async () => {
    sink = await SmtpSink.start();
  });
  after(async () => {
    await sink.stop();
  });

  test("a first attempt is composed in the thread, sent, and its MIME comes back to be stored", async () => {
    const dispatcher = new ThreadedDispatcher(settings(sink.url), quiet);
    try {
      const message = row({ subject: "From the relay thread" });
      const result = await dispatcher.dispatch(firstAttempt(message));
      assert.equal(result.report.failure, null);
      assert.deepEqual(
        result.report.recipients.map((recipient) => [recipient.address, recipient.state]),
        [["john.doe@example.com", "accepted"]],
      );
      assert.equal(result.mime, await composed(message), "the bytes the main thread would have composed");
      const received = sink.received.find((mail) => mail.messageId === message.message_id);
      assert.equal(received?.raw, result.mime, "the relay got exactly those bytes");
    } finally {
      await dispatcher.close();
    }
  });

  test("a retry sends the stored bytes as they are and composes nothing", async () => {
    const dispatcher = new ThreadedDispatcher(settings(sink.url), quiet);
    try {
      const message = row({ num_attempts: 1 });
      const stored = await composed(
        row({ sid: message.sid, message_id: message.message_id, subject: "Stored" }),
      );
      const result = await dispatcher.dispatch({
        envelope: firstAttempt(message).envelope,
        mime: { stored },
      });
      assert.equal(result.report.failure, null);
      assert.equal(result.mime, undefined);
      const received = sink.received.find((mail) => mail.messageId === message.message_id);
      assert.equal(received?.parsed.subject, "Stored", "the stored MIME, not the row, was sent");
    } finally {
      await dispatcher.close();
    }
  });

  test("a relay that refuses connections: a deferred report, and the failure reaches the main thread's log", async () => {
    const lines: Array<{ fields: { err: Error; failuresSinceLastLog: number }; message: string }> = [];
    const logger = {
      warn: (fields: { err: Error; failuresSinceLastLog: number }, message: string) =>
        lines.push({ fields, message }),
    } as unknown as DeliveryLogger;
    const dispatcher = new ThreadedDispatcher(settings(`smtp://127.0.0.1:${await closedPort()}`), logger);
    try {
      for (let i = 0; i < 3; i++) {
        const message = row();
        const result = await dispatcher.dispatch(firstAttempt(message));
        assert.equal(result.report.recipients[0]?.state, "deferred");
        assert.ok(result.report.failure, "the attempt says why it failed");
      }
      await waitFor("the relay failure log line", () => lines.length > 0);
      assert.equal(lines.length, 1, "three failures within 10 s: one line reaches the main thread's log");
      assert.match(lines[0]?.message ?? "", /SMTP relay connection failed/);
      assert.ok(lines[0]?.fields.err instanceof Error);
      assert.match(lines[0]?.fields.err.message ?? "", /ECONNREFUSED|refused/i);
      assert.equal(lines[0]?.fields.failuresSinceLastLog, 0);
    } finally {
      await dispatcher.close();
    }
  });

  test("a relay thread that ended unexpectedly is replaced at the next delivery", async () => {
    const dispatcher = new ThreadedDispatcher(settings(sink.url), quiet);
    try {
      const first = (dispatcher as unknown as { thread: ThreadClient<RelayThreadApi> }).thread;
      await first.close();
      assert.ok(first.gone, "the first thread has ended");
      const message = row();
      const result = await dispatcher.dispatch(firstAttempt(message));
      assert.equal(result.report.failure, null, "delivered through a new thread");
      assert.equal(sink.count(message.message_id), 1);
    } finally {
      await dispatcher.close();
    }
  });

  test("once closed, a dispatcher starts no new thread: a late delivery fails (and is retried later)", async () => {
    const dispatcher = new ThreadedDispatcher(settings(sink.url), quiet);
    await dispatcher.close();
    const message = row();
    await assert.rejects(dispatcher.dispatch(firstAttempt(message)), /relay thread stopped/);
    assert.equal(sink.count(message.message_id), 0);
  });
});
