import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import BetterSqlite3 from "better-sqlite3";
import { getMessage } from "./helpers/delivery.js";
import { request, sendEmail, startMailroom } from "./helpers/mailroom.js";
import { SmtpSink } from "./helpers/smtp-sink.js";
import { waitFor } from "./helpers/wait.js";

/** A small tmpfs of its own (root only), or why there is none. */
function mountSmallDisk(): { dir: string; unmount: () => void } | string {
  const dir = mkdtempSync(join(tmpdir(), "mailroom-small-disk-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", dir], { stdio: "pipe" });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`;
  }
  return {
    dir,
    unmount() {
      execFileSync("umount", [dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes zeros into `file` until the file system refuses more. */
function fillDisk(file: string): void {
  const fd = openSync(file, "w");
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOSPC") throw error;
  } finally {
    closeSync(fd);
  }
}

const probe = mountSmallDisk();
if (typeof probe !== "string") probe.unmount();

describe("a full disk (SQLite on a 16 MB tmpfs)", { skip: typeof probe === "string" && probe }, () => {
  test("507 with code 20504, /readyz 503, no new deliveries, and what was in flight is recorded and sent once", async () => {
    const disk = mountSmallDisk();
    if (typeof disk === "string") throw new Error(disk);
    const dataDir = join(disk.dir, "data");
    // Answers each message after a moment: the first two are in flight when the disk fills.
    const sink = await SmtpSink.start({ rules: { dataDelayMs: 1500 } });
    const server = await startMailroom({
      dataDir,
      env: {
        MAILROOM_SMTP_URL: sink.url,
        MAILROOM_DELIVERY_CONCURRENCY: "2",
        MAILROOM_POLL_INTERVAL_MS: "200",
      },
    });
    const filler = join(disk.dir, "filler");
    try {
      const sent = [];
      for (let i = 0; i < 3; i++) {
        const response = await sendEmail(server, server.admin, { Subject: `before the disk filled ${i}` });
        assert.equal(response.status, 200, response.text);
        sent.push(response.json as { sid: string; message_id: string });
      }
      await waitFor("two deliveries in flight", () => sink.unanswered === 2);
      // Empty the log into the database file first: from now on every commit needs new blocks.
      const db = new BetterSqlite3(join(dataDir, "mailroom.db"));
      db.pragma("wal_checkpoint(TRUNCATE)");
      db.close();
      fillDisk(filler);

      const refused = await sendEmail(server, server.admin, { Subject: "while full" });
      assert.equal(refused.status, 507, refused.text);
      assert.equal(refused.json.code, 20504);
      assert.match(refused.json.message, /out of disk space/);
      const ready = await request(server, "GET", "/readyz");
      assert.equal(ready.status, 503);
      assert.equal(ready.json.reason, "disk full");

      // The two in flight are answered by the relay; their records cannot be written.
      await waitFor("the relay's answers to both", () => sink.answered.length === 2);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(sink.answered.length + sink.unanswered, 2, "nothing new is sent while records fail");

      unlinkSync(filler);
      await waitFor(
        "/readyz to answer 200",
        async () => (await request(server, "GET", "/readyz")).status === 200,
      );
      for (const message of sent) {
        await waitFor(`${message.sid} sent`, async () => {
          const status = (await getMessage(server, server.admin, message.sid)).status;
          return status === "sent";
        });
      }
      for (const message of sent) {
        assert.equal(sink.count(message.message_id), 1, `${message.sid} reached the relay once`);
        const attempts = await request(
          server,
          "GET",
          `/restcomm/2012-04-24/Accounts/${server.admin.sid}/Email/Messages/${message.sid}/Attempts.json`,
          { auth: server.admin },
        );
        assert.equal(attempts.status, 200);
      }
      assert.equal((await sendEmail(server, server.admin, { Subject: "after" })).status, 200);
    } finally {
      rmSync(filler, { force: true });
      await server.close();
      await sink.stop();
      disk.unmount();
    }
  });
});
