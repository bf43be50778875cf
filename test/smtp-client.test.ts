import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import net, { type AddressInfo } from "node:net";
import { after, describe, test } from "node:test";
import { SMTPServer, type SMTPServerOptions } from "smtp-server";
import { type SmtpSettings, SmtpTransport } from "../src/delivery/transports/smtp.js";
import { dataPayload, messageSize } from "../src/delivery/transports/smtp-connection.js";
import type { SendReport } from "../src/delivery/transports/transport.js";
import { waitFor } from "./helpers/wait.js";

/**
 * Mailroom's SMTP client against real peers: smtp-server for whole sessions (TLS, AUTH, many
 * messages), and a scripted raw TCP peer where the exact bytes and their chunking matter
 * (pipelining, replies split or bunched, a relay that goes silent or hangs up).
 */

const RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello\r\n";
const ENVELOPE = { from: "a@example.org", to: ["b@example.org", "c@example.org"] };
/** MAIL FROM for RAW (CRLF, no leading dots: its size is its length) to a relay that announces SIZE. */
const MAIL_FROM = `MAIL FROM:<a@example.org> SIZE=${Buffer.byteLength(RAW)}`;

const transports: SmtpTransport[] = [];
after(async () => {
  for (const transport of transports) await transport.close();
});

function transport(url: string, settings: Partial<SmtpSettings> = {}, errors: Error[] = []): SmtpTransport {
  const created = new SmtpTransport(
    {
      url,
      poolSize: 2,
      startTls: "opportunistic",
      connectTimeoutMs: 3000,
      socketTimeoutMs: 3000,
      ...settings,
    },
    (error) => errors.push(error),
  );
  transports.push(created);
  return created;
}

function states(report: SendReport): Array<[string, string, number | null]> {
  return report.recipients.map((r) => [r.address, r.state, r.smtp_code]);
}

// ---------------------------------------------------------------------------------------------
// A scripted peer: answers line by line, records what arrived and in which chunks.

/** A reply as one write, as pieces written 30 ms apart (split across TCP chunks), or an action. */
type Answer = string | string[] | "CLOSE" | "SILENCE";

interface PeerSession {
  /** Everything the client sent, chunk by chunk as it arrived. */
  chunks: string[];
  commands: string[];
  /** DATA payloads as sent (dot-stuffed, with the final ".\r\n"). */
  payloads: string[];
  closed: boolean;
}

interface Script {
  greeting?: Answer;
  ehlo?: Answer;
  /** The answer to a command; undefined answers it the usual way. */
  answer?(command: string, session: PeerSession): Answer | undefined;
  /** The answer to a message's final dot. */
  endOfData?(payload: string, session: PeerSession): Answer;
}

interface ScriptedPeer {
  port: number;
  url: string;
  sessions: PeerSession[];
  close(): Promise<void>;
}

const PIPELINING_EHLO = "250-scripted.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000000";

async function scriptedPeer(script: Script = {}): Promise<ScriptedPeer> {
  const sessions: PeerSession[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => {});
    sockets.add(socket);
    const session: PeerSession = { chunks: [], commands: [], payloads: [], closed: false };
    sessions.push(session);
    socket.on("close", () => {
      session.closed = true;
      sockets.delete(socket);
    });
    let input = "";
    let inData = false;
    let working = false;
    let silent = false;

    /** Writes an answer; false when the session is over (closed or silent). */
    const write = async (answer: Answer | undefined, pending: string[]): Promise<boolean> => {
      if (answer === undefined) return true;
      if (answer === "CLOSE" || answer === "SILENCE") {
        if (pending.length) socket.write(pending.splice(0).join(""));
        if (answer === "CLOSE") socket.destroy();
        silent = true;
        return false;
      }
      if (typeof answer === "string") {
        pending.push(`${answer}\r\n`);
        return true;
      }
      for (const [i, piece] of answer.entries()) {
        if (i > 0) await new Promise((resolve) => setTimeout(resolve, 30));
        socket.write(i === 0 ? pending.splice(0).join("") + piece : piece);
      }
      return true;
    };

    const pump = async () => {
      if (working) return;
      working = true;
      // Every answer to the lines of one chunk goes out in one write (several replies in one chunk).
      const pending: string[] = [];
      for (;;) {
        if (silent) break;
        if (inData) {
          const end = input.startsWith(".\r\n") ? 0 : input.indexOf("\r\n.\r\n");
          if (end < 0) break;
          const length = end === 0 ? 3 : end + 5;
          const payload = input.slice(0, length);
          input = input.slice(length);
          inData = false;
          session.payloads.push(payload);
          if (!(await write(script.endOfData?.(payload, session) ?? "250 2.0.0 Ok: queued as 1", pending)))
            break;
          continue;
        }
        const newline = input.indexOf("\r\n");
        if (newline < 0) break;
        const command = input.slice(0, newline);
        input = input.slice(newline + 2);
        session.commands.push(command);
        const verb = (command.split(/[ :]/)[0] ?? "").toUpperCase();
        let answer = script.answer?.(command, session);
        if (answer === undefined) {
          if (verb === "EHLO") answer = script.ehlo ?? PIPELINING_EHLO;
          else if (verb === "HELO" || verb === "MAIL" || verb === "RCPT" || verb === "RSET")
            answer = "250 2.0.0 Ok";
          else if (verb === "DATA") answer = "354 End data with <CR><LF>.<CR><LF>";
          else if (verb === "QUIT") {
            socket.end(`${pending.splice(0).join("")}221 2.0.0 Bye\r\n`);
            break;
          } else answer = "502 5.5.2 Error: command not recognized";
        }
        if (verb === "DATA" && (typeof answer === "string" ? answer : answer.join("")).startsWith("354")) {
          inData = true;
        }
        if (!(await write(answer, pending))) break;
      }
      if (pending.length && !socket.destroyed) socket.write(pending.join(""));
      working = false;
    };

    socket.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      session.chunks.push(text);
      input += text;
      void pump();
    });
    const greeting = script.greeting ?? "220 scripted.example ESMTP";
    void write(greeting, []).then((open) => {
      if (open && typeof greeting === "string") socket.write(`${greeting}\r\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    sessions,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// smtp-server peers.

interface Relay {
  port: number;
  /** Each accepted message; `octets` is smtp-server's own count of it (what it checks against `size`). */
  received: Array<{ raw: string; octets: number; to: string[]; secure: boolean; user: string | undefined }>;
  logins: Array<{ method: string; username: string | undefined; password: string | undefined }>;
  connections: number;
  close(): Promise<void>;
}

async function relay(options: SMTPServerOptions = {}): Promise<Relay> {
  const state: Relay = { port: 0, received: [], logins: [], connections: 0, close: async () => {} };
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    onConnect: (_session, callback) => {
      state.connections++;
      callback();
    },
    onData: (stream, session, callback) => {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        state.received.push({
          raw: Buffer.concat(chunks).toString("utf8"),
          octets: stream.byteLength,
          to: session.envelope.rcptTo.map((r) => r.address),
          secure: session.secure,
          user: session.user as string | undefined,
        });
        callback(null, "queued by the test relay");
      });
    },
    ...options,
  });
  server.on("error", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  state.port = (server.server.address() as AddressInfo).port;
  state.close = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of server.connections) connection.close();
    await closed;
  };
  return state;
}

function authRelay(
  methods: string[],
  password: string,
  relayOptions: SMTPServerOptions = {},
): Promise<Relay> {
  let target: Relay | undefined;
  const started = relay({
    disabledCommands: ["STARTTLS"],
    authOptional: false,
    allowInsecureAuth: true,
    authMethods: methods,
    onAuth: (auth, _session, callback) => {
      target?.logins.push({
        method: auth.method,
        username: auth.username ?? undefined,
        password: auth.password ?? undefined,
      });
      if (auth.password === password) callback(null, { user: auth.username });
      else callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
    },
    ...relayOptions,
  });
  return started.then((r) => {
    target = r;
    return r;
  });
}

// ---------------------------------------------------------------------------------------------

describe("SMTP client: pipelining", () => {
  test("MAIL, every RCPT and DATA leave in one write; the message and its dot in the next", async () => {
    const peer = await scriptedPeer({
      answer: (command) =>
        command === "RCPT TO:<c@example.org>" ? "550 5.1.1 No such user here" : undefined,
    });
    try {
      const report = await transport(peer.url).send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(states(report), [
        ["b@example.org", "accepted", 250],
        ["c@example.org", "rejected", 550],
      ]);
      assert.equal(report.recipients[1]?.response, "550 5.1.1 No such user here");
      const session = peer.sessions[0];
      assert.ok(session);
      assert.match(session.chunks[0] ?? "", /^EHLO \S+\r\n$/);
      assert.deepEqual(session.chunks.slice(1), [
        `${MAIL_FROM}\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n`,
        `${RAW}.\r\n`,
      ]);
    } finally {
      await peer.close();
    }
  });

  test("several replies in one chunk and replies split across chunks are read in order", async () => {
    const peer = await scriptedPeer({
      greeting: ["220-scripted.example", " says hello\r\n220 ready\r\n"],
      ehlo: ["250-scripted.example\r\n250-PIPE", "LINING\r\n250 8BITMIME\r\n"],
      // The four replies to the pipelined envelope go out in one write (see the peer's pump).
      answer: (command) =>
        command.startsWith("RCPT TO:<b@") ? "451 4.7.1 Greylisted, try again in 5 minutes" : undefined,
      endOfData: () => ["250-2.0.0 Ok: queu", "ed as ABC123\r\n250 2.0.0 Have a nice day\r\n"],
    });
    try {
      const report = await transport(peer.url).send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(states(report), [
        ["b@example.org", "deferred", 451],
        ["c@example.org", "accepted", 250],
      ]);
      assert.equal(report.recipients[0]?.response, "451 4.7.1 Greylisted, try again in 5 minutes");
      assert.equal(report.response, "250-2.0.0 Ok: queued as ABC123\n250 2.0.0 Have a nice day");
      assert.equal(report.failure, null);
      // PIPELINING was read from an EHLO reply that arrived in two pieces.
      assert.equal(peer.sessions[0]?.chunks[1]?.split("\r\n").length, 5);
    } finally {
      await peer.close();
    }
  });

  test("a waiting message's envelope goes out in the same write as the previous message's data", async () => {
    const peer = await scriptedPeer();
    try {
      const client = transport(peer.url, { poolSize: 1 });
      const reports = await Promise.all(
        [1, 2, 3].map((i) =>
          client.send({ envelope: { from: "a@example.org", to: [`r${i}@example.org`] }, raw: RAW }),
        ),
      );
      for (const report of reports) assert.equal(report.failure, null, report.failure?.message);
      const session = peer.sessions[0];
      assert.ok(session);
      assert.equal(peer.sessions.length, 1);
      assert.deepEqual(session.chunks.slice(1), [
        `${MAIL_FROM}\r\nRCPT TO:<r1@example.org>\r\nDATA\r\n`,
        `${RAW}.\r\n${MAIL_FROM}\r\nRCPT TO:<r2@example.org>\r\nDATA\r\n`,
        `${RAW}.\r\n${MAIL_FROM}\r\nRCPT TO:<r3@example.org>\r\nDATA\r\n`,
        `${RAW}.\r\n`,
      ]);
      assert.deepEqual(
        reports.map((report) => report.recipients[0]?.address),
        ["r1@example.org", "r2@example.org", "r3@example.org"],
      );
    } finally {
      await peer.close();
    }
  });

  test("a message refused at its end does not disturb the envelope sent behind it", async () => {
    const peer = await scriptedPeer({
      endOfData: (_payload, session) =>
        session.payloads.length === 1 ? "554 5.7.1 Rejected for policy reasons" : "250 2.0.0 Ok: queued as 2",
    });
    try {
      const client = transport(peer.url, { poolSize: 1 });
      const [first, second] = await Promise.all([
        client.send({ envelope: { from: "a@example.org", to: ["r1@example.org"] }, raw: RAW }),
        client.send({ envelope: { from: "a@example.org", to: ["r2@example.org"] }, raw: RAW }),
      ]);
      assert.deepEqual(first && states(first), [["r1@example.org", "rejected", 554]]);
      assert.deepEqual(second && states(second), [["r2@example.org", "accepted", 250]]);
      assert.equal(second?.response, "250 2.0.0 Ok: queued as 2");
      assert.equal(peer.sessions.length, 1);
      assert.ok(!peer.sessions[0]?.commands.includes("RSET"), "no RSET: the transaction had ended");
    } finally {
      await peer.close();
    }
  });

  test("the relay closes after a message's data: the envelope sent behind it starts over on a new connection", async () => {
    const peer: ScriptedPeer = await scriptedPeer({
      // The first connection's first message is answered with 421 (the relay shuts down).
      endOfData: (_payload, session) =>
        session === peer.sessions[0] ? "421 4.3.2 Shutting down" : "250 2.0.0 Ok",
    });
    try {
      const client = transport(peer.url, { poolSize: 1 });
      const [first, second] = await Promise.all([
        client.send({ envelope: { from: "a@example.org", to: ["r1@example.org"] }, raw: RAW }),
        client.send({ envelope: { from: "a@example.org", to: ["r2@example.org"] }, raw: RAW }),
      ]);
      assert.deepEqual(first && states(first), [["r1@example.org", "deferred", 421]]);
      assert.equal(second?.failure, null, second?.failure?.message);
      assert.equal(peer.sessions.length, 2);
      assert.match(
        peer.sessions[0]?.chunks.at(-1) ?? "",
        /\.\r\nMAIL FROM:<a@example\.org> SIZE=\d+\r\nRCPT TO:<r2@/,
      );
      assert.deepEqual(peer.sessions[1]?.commands.slice(1), [MAIL_FROM, "RCPT TO:<r2@example.org>", "DATA"]);
    } finally {
      await peer.close();
    }
  });

  test("a waiting message with an unsendable address fails alone; nothing of it is written", async () => {
    const peer = await scriptedPeer();
    try {
      const client = transport(peer.url, { poolSize: 1 });
      const [first, bad, third] = await Promise.all([
        client.send({ envelope: { from: "a@example.org", to: ["r1@example.org"] }, raw: RAW }),
        client.send({ envelope: { from: "a@example.org", to: ["r2@example.org>\r\nRSET"] }, raw: RAW }),
        client.send({ envelope: { from: "a@example.org", to: ["r3@example.org"] }, raw: RAW }),
      ]);
      assert.equal(first?.failure, null);
      assert.equal(third?.failure, null);
      assert.ok(bad?.failure, "the bad envelope fails");
      const sent = peer.sessions.flatMap((session) => session.commands);
      assert.ok(!sent.some((command) => command.includes("r2@")), "nothing of the bad envelope went out");
      assert.equal(peer.sessions.flatMap((session) => session.payloads).length, 2);
    } finally {
      await peer.close();
    }
  });

  test("a relay without PIPELINING gets one command at a time", async () => {
    const peer = await scriptedPeer({ ehlo: "250-scripted.example\r\n250 8BITMIME" });
    try {
      const report = await transport(peer.url).send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(report.failure, null);
      assert.deepEqual(peer.sessions[0]?.chunks.slice(1), [
        "MAIL FROM:<a@example.org>\r\n",
        "RCPT TO:<b@example.org>\r\n",
        "RCPT TO:<c@example.org>\r\n",
        "DATA\r\n",
        `${RAW}.\r\n`,
      ]);
    } finally {
      await peer.close();
    }
  });

  test("MAIL FROM declares BODY=8BITMIME for a message that is not ASCII, and its size in UTF-8 octets", async () => {
    const peer = await scriptedPeer({ ehlo: "250-scripted.example\r\n250-8BITMIME\r\n250 SIZE 1000000" });
    try {
      const client = transport(peer.url);
      const ascii = RAW;
      const utf8 = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nGrüße 😀\r\n";
      for (const raw of [ascii, utf8]) {
        const report = await client.send({ envelope: ENVELOPE, raw });
        assert.equal(report.failure, null);
      }
      const mailFroms = peer.sessions.flatMap((session) =>
        session.chunks.filter((chunk) => chunk.startsWith("MAIL FROM")),
      );
      assert.deepEqual(mailFroms, [
        `MAIL FROM:<a@example.org> SIZE=${ascii.length}\r\n`,
        `MAIL FROM:<a@example.org> BODY=8BITMIME SIZE=${Buffer.byteLength(utf8)}\r\n`,
      ]);
    } finally {
      await peer.close();
    }
  });

  test("smtp-server with PIPELINING hidden: delivered, a refused recipient reported per recipient", async () => {
    const server = await relay({
      hidePIPELINING: true,
      onRcptTo: (address, _session, callback) =>
        callback(
          address.address.startsWith("c@")
            ? Object.assign(new Error("No such user"), { responseCode: 550 })
            : null,
        ),
    });
    try {
      const report = await transport(`smtp://127.0.0.1:${server.port}`).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.deepEqual(states(report), [
        ["b@example.org", "accepted", 250],
        ["c@example.org", "rejected", 550],
      ]);
      assert.match(report.recipients[1]?.response ?? "", /^550 .*No such user/);
      assert.deepEqual(
        server.received.map((m) => m.to),
        [["b@example.org"]],
      );
      assert.equal(server.received[0]?.raw, RAW);
    } finally {
      await server.close();
    }
  });

  test("every recipient refused: judged per recipient, RSET before the connection is used again", async () => {
    let refuse = true;
    const peer = await scriptedPeer({
      answer: (command) => {
        if (!refuse) return undefined;
        if (command.startsWith("RCPT TO:<b@")) return "550 5.1.1 No such user";
        if (command.startsWith("RCPT TO:<c@")) return "452 4.2.2 Mailbox full";
        if (command === "DATA") return "554 5.5.1 Error: no valid recipients";
        return undefined;
      },
    });
    try {
      const client = transport(peer.url, { poolSize: 1 });
      const refused = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(states(refused), [
        ["b@example.org", "rejected", 550],
        ["c@example.org", "deferred", 452],
      ]);
      assert.equal(refused.failure, null);
      // The temporary refusal concludes the attempt, as nodemailer reported it.
      assert.equal(refused.smtpCode, 452);
      refuse = false;
      const sent = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(sent.failure, null);
      assert.equal(peer.sessions.length, 1, "the same connection carried on");
      const commands = peer.sessions[0]?.commands ?? [];
      assert.deepEqual(commands.slice(commands.indexOf("DATA"), commands.indexOf("DATA") + 3), [
        "DATA",
        "RSET",
        MAIL_FROM,
      ]);
    } finally {
      await peer.close();
    }
  });

  test("a refused sender defers or rejects every recipient, per its reply", async () => {
    let reply = "451 4.3.0 Sender domain lookup failed, try later";
    const peer = await scriptedPeer({
      answer: (command) => {
        if (command.startsWith("MAIL")) return reply;
        if (command.startsWith("RCPT") || command === "DATA") return "503 5.5.1 Error: need MAIL command";
        return undefined;
      },
    });
    try {
      const client = transport(peer.url);
      const deferred = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(
        deferred.recipients.map((r) => r.state),
        ["deferred", "deferred"],
      );
      assert.equal(deferred.failure?.code, 13103);
      assert.equal(
        deferred.failure?.message,
        'The relay deferred the sender: "451 4.3.0 Sender domain lookup failed, try later".',
      );
      reply = "550 5.7.1 Sender refused";
      const rejected = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(
        rejected.recipients.map((r) => [r.state, r.smtp_code]),
        [
          ["rejected", 550],
          ["rejected", 550],
        ],
      );
      assert.equal(rejected.failure?.code, 13101);
      assert.match(
        rejected.failure?.message ?? "",
        /refused the sender permanently: "550 5\.7\.1 Sender refused"/,
      );
      reply = "503 5.5.1 Error: nested MAIL command";
      const sequence = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(sequence.failure?.code, 13103, "503 is a session problem, not a verdict");
    } finally {
      await peer.close();
    }
  });
});

describe("SMTP client: message data", () => {
  test("dot-stuffing: lines starting with '.' and a line that is only '.' arrive intact", async () => {
    const server = await relay();
    const raw = `${RAW}.leading dot\r\n.\r\n..two dots\r\nlast line\r\n`;
    try {
      const report = await transport(`smtp://127.0.0.1:${server.port}`).send({ envelope: ENVELOPE, raw });
      assert.equal(report.failure, null);
      assert.equal(server.received[0]?.raw, raw, "the relay got every line, the message did not end early");
    } finally {
      await server.close();
    }
  });

  test("on the wire: every leading dot doubled (the first line too), CRLF before the final dot", async () => {
    const peer = await scriptedPeer();
    try {
      const client = transport(peer.url, { poolSize: 1 });
      await client.send({ envelope: ENVELOPE, raw: ".first\r\nmiddle\r\n.\r\n.last" });
      assert.deepEqual(peer.sessions[0]?.payloads, ["..first\r\nmiddle\r\n..\r\n..last\r\n.\r\n"]);
    } finally {
      await peer.close();
    }
  });

  test("bare LF (and bare CR) line breaks are sent as CRLF", async () => {
    const server = await relay();
    try {
      const raw = "From: a@example.org\nSubject: old\n\nline one\n.dot\rline three\n";
      const report = await transport(`smtp://127.0.0.1:${server.port}`).send({ envelope: ENVELOPE, raw });
      assert.equal(report.failure, null);
      assert.equal(
        server.received[0]?.raw,
        "From: a@example.org\r\nSubject: old\r\n\r\nline one\r\n.dot\r\nline three\r\n",
      );
    } finally {
      await server.close();
    }
  });

  test("dataPayload: one pass, exact output", () => {
    assert.equal(dataPayload(RAW), `${RAW}.\r\n`);
    assert.equal(dataPayload("a\r\r\nb"), "a\r\n\r\nb\r\n.\r\n");
    assert.equal(dataPayload("a\n\n.b\r.c"), "a\r\n\r\n..b\r\n..c\r\n.\r\n");
    assert.equal(dataPayload("ends with CR\r"), "ends with CR\r\n.\r\n");
    assert.equal(dataPayload("."), "..\r\n.\r\n");
  });
});

/** smtp-server's logger hears every command it reads, accepted or refused: their verbs, in order. */
function commandLog(verbs: string[]): SMTPServerOptions["logger"] {
  const ignore = () => {};
  const debug = (entry: { tnx?: string; command?: string }) => {
    if (entry.tnx === "command" && entry.command) verbs.push(entry.command);
  };
  return { level: ignore, trace: ignore, debug, info: ignore, warn: ignore, error: ignore, fatal: ignore };
}

/** A relay that also records every command's verb and the SIZE= of each MAIL FROM it took. */
async function sizeRelay(
  options: SMTPServerOptions,
): Promise<Relay & { verbs: string[]; declared: Array<string | undefined> }> {
  const verbs: string[] = [];
  const declared: Array<string | undefined> = [];
  const server = await relay({
    logger: commandLog(verbs),
    onMailFrom: (address, _session, callback) => {
      // smtp-server's args: the MAIL FROM parameters by name, or false when there were none.
      declared.push((address.args as { SIZE?: string }).SIZE);
      callback();
    },
    ...options,
  });
  return Object.assign(server, { verbs, declared });
}

const count = (verbs: string[], verb: string) => verbs.filter((v) => v === verb).length;

describe("SMTP client: SIZE (RFC 1870)", () => {
  // 3,182 octets: over the 2,000 the relays below allow.
  const BIG = RAW + `${"x".repeat(76)}\r\n`.repeat(40);
  const big = (to: string) => ({ envelope: { from: "a@example.org", to: [to] }, raw: BIG });

  test("MAIL FROM declares the octets the relay counts: CRLF line ends, no doubled dots, no final dot", async () => {
    const server = await sizeRelay({ size: 1_000_000 });
    // Bare LFs, lines that start with dots, UTF-8 (two and three octets a character), no final line break.
    const raw = "From: a@example.org\nSubject: Grüße\r\n\r\n.one dot\n..two dots\r\n.\r\nä ✓ the end";
    const stored = `${raw.replace(/\r?\n/g, "\r\n")}\r\n`;
    try {
      const client = transport(`smtp://127.0.0.1:${server.port}`, { poolSize: 1 });
      for (const message of [raw, RAW]) {
        const report = await client.send({ envelope: ENVELOPE, raw: message });
        assert.equal(report.failure, null, report.failure?.message);
      }
      assert.equal(server.received[0]?.raw, stored);
      assert.deepEqual(server.declared, [String(Buffer.byteLength(stored)), String(Buffer.byteLength(RAW))]);
      assert.deepEqual(
        server.received.map((m) => String(m.octets)),
        server.declared,
        "the relay measured what was declared",
      );
    } finally {
      await server.close();
    }
  });

  test("a message over the relay's limit fails at once (13109, every recipient rejected); nothing of it is sent", async () => {
    const server = await sizeRelay({ size: 2000 });
    const errors: Error[] = [];
    try {
      const client = transport(`smtp://127.0.0.1:${server.port}`, { poolSize: 1 }, errors);
      const report = await client.send({ envelope: ENVELOPE, raw: BIG });
      assert.equal(report.failure?.code, 13109);
      assert.equal(
        report.failure?.message,
        `The message is 3,182 bytes; the relay 127.0.0.1:${server.port} accepts at most 2,000 (its SIZE limit). Retrying will not help: send a smaller message or raise the relay's limit.`,
      );
      assert.deepEqual(states(report), [
        ["b@example.org", "rejected", null],
        ["c@example.org", "rejected", null],
      ]);
      assert.equal(report.smtpCode, null);

      // The same pool, the same connection: the next message goes through.
      const next = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(next.failure, null, next.failure?.message);
      assert.deepEqual(server.verbs, ["EHLO", "MAIL", "RCPT", "RCPT", "DATA"], "no command for the big one");
      assert.deepEqual(server.declared, [String(Buffer.byteLength(RAW))]);
      assert.equal(server.received.length, 1);
      assert.equal(server.connections, 1);
      assert.deepEqual(errors, [], "not a connection failure");
    } finally {
      await server.close();
    }
  });

  test("an oversized message waiting to be pipelined behind another's data fails alone, unsent", async () => {
    const server = await sizeRelay({ size: 2000 });
    try {
      const client = transport(`smtp://127.0.0.1:${server.port}`, { poolSize: 1 });
      const small = (to: string) => ({ envelope: { from: "a@example.org", to: [to] }, raw: RAW });
      // One connection: each message after the first is offered to go out behind its predecessor's data.
      const reports = await Promise.all(
        [
          small("r1@x.example"),
          big("r2@x.example"),
          small("r3@x.example"),
          big("r4@x.example"),
          small("r5@x.example"),
        ].map((message) => client.send(message)),
      );
      assert.deepEqual(
        reports.map((r) => [r.recipients[0]?.state, r.failure?.code ?? null]),
        [
          ["accepted", null],
          ["rejected", 13109],
          ["accepted", null],
          ["rejected", 13109],
          ["accepted", null],
        ],
      );
      assert.deepEqual(
        server.received.map((m) => m.to),
        [["r1@x.example"], ["r3@x.example"], ["r5@x.example"]],
      );
      assert.equal(count(server.verbs, "MAIL"), 3);
      assert.equal(count(server.verbs, "DATA"), 3);
      assert.ok(!server.verbs.includes("RSET"), "no transaction was left open");
      assert.equal(server.connections, 1);
    } finally {
      await server.close();
    }
  });

  test("on the wire: the oversized message leaves no envelope in the batch; the one after it goes out alone", async () => {
    const peer = await scriptedPeer({ ehlo: "250-scripted.example\r\n250-PIPELINING\r\n250 SIZE 2000" });
    try {
      const client = transport(peer.url, { poolSize: 1 });
      const reports = await Promise.all(
        [{ envelope: ENVELOPE, raw: RAW }, big("r2@x.example"), { envelope: ENVELOPE, raw: RAW }].map(
          (message) => client.send(message),
        ),
      );
      assert.deepEqual(
        reports.map((r) => r.failure?.code ?? null),
        [null, 13109, null],
      );
      const envelope = `${MAIL_FROM}\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n`;
      assert.deepEqual(peer.sessions[0]?.chunks.slice(1), [envelope, `${RAW}.\r\n`, envelope, `${RAW}.\r\n`]);
    } finally {
      await peer.close();
    }
  });

  test("SIZE without a limit: declared, not checked here; the relay's 552 after DATA is a permanent refusal", async () => {
    const server = await sizeRelay({
      size: 2000,
      hideSize: true,
      onData: (stream, _session, callback) => {
        stream.resume();
        stream.on("end", () =>
          callback(
            stream.sizeExceeded
              ? Object.assign(new Error("5.3.4 Message too big for system"), { responseCode: 552 })
              : null,
          ),
        );
      },
    });
    try {
      const oversized = big("b@example.org");
      const report = await transport(`smtp://127.0.0.1:${server.port}`).send(oversized);
      assert.deepEqual(server.declared, [String(Buffer.byteLength(oversized.raw))]);
      assert.equal(count(server.verbs, "DATA"), 1, "the message went out: the relay named no limit");
      assert.equal(report.failure?.code, 13101);
      assert.deepEqual(states(report), [["b@example.org", "rejected", 552]]);
    } finally {
      await server.close();
    }
  });

  test("a 552 to MAIL FROM stays a permanent refusal", async () => {
    const peer = await scriptedPeer({
      ehlo: "250-scripted.example\r\n250-PIPELINING\r\n250 SIZE",
      answer: (command) =>
        command.startsWith("MAIL") ? "552 5.3.4 Message size exceeds fixed maximum message size" : undefined,
    });
    try {
      const report = await transport(peer.url).send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(report.failure?.code, 13101);
      assert.deepEqual(
        report.recipients.map((r) => [r.state, r.smtp_code]),
        [
          ["rejected", 552],
          ["rejected", 552],
        ],
      );
      assert.equal(peer.sessions[0]?.commands[1], MAIL_FROM);
    } finally {
      await peer.close();
    }
  });

  test("a relay that does not announce SIZE gets no SIZE parameter, and no limit is assumed", async () => {
    const server = await sizeRelay({});
    try {
      const oversized = big("b@example.org");
      const report = await transport(`smtp://127.0.0.1:${server.port}`).send(oversized);
      assert.equal(report.failure, null, report.failure?.message);
      assert.deepEqual(server.declared, [undefined]);
      assert.equal(server.received[0]?.raw, oversized.raw);
    } finally {
      await server.close();
    }
  });

  test("messageSize: the message's octets with CRLF line ends, without doubled dots or the final dot line", () => {
    for (const raw of [
      RAW,
      "",
      ".",
      "a\n.b",
      "..\r\n.\r\n",
      "ü ✓\r",
      "ü ✓\r\n",
      "no line break",
      "a\r\n\r\n",
    ]) {
      const stored = raw.replace(/\r\n|\r|\n/g, "\r\n");
      const expected = Buffer.byteLength(stored.endsWith("\r\n") ? stored : `${stored}\r\n`);
      assert.equal(messageSize(raw, dataPayload(raw)), expected, JSON.stringify(raw));
    }
  });
});

describe("SMTP client: login and TLS", () => {
  const user = "mail@room";
  const password = "p:ss w%rd/ü";
  // These relays are scripted in plain text: the URL allows AUTH without TLS, as it must for that.
  const url = (port: number, pass = password) =>
    `smtp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${port}?allowInsecureAuth=true`;

  for (const method of ["PLAIN", "LOGIN"]) {
    test(`AUTH ${method} with the URL's percent-decoded user name and password`, async () => {
      const server = await authRelay([method], password);
      try {
        const report = await transport(url(server.port)).send({ envelope: ENVELOPE, raw: RAW });
        assert.equal(report.failure, null, report.failure?.message);
        assert.deepEqual(server.logins, [{ method, username: user, password }]);
        assert.equal(server.received[0]?.user, user);
      } finally {
        await server.close();
      }
    });
  }

  test("PLAIN is preferred when both are offered", async () => {
    const server = await authRelay(["LOGIN", "PLAIN"], password);
    try {
      await transport(url(server.port)).send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(
        server.logins.map((l) => l.method),
        ["PLAIN"],
      );
    } finally {
      await server.close();
    }
  });

  test("a wrong password is a relay setup problem naming MAILROOM_SMTP_URL, retried, nothing sent", async () => {
    const server = await authRelay(["PLAIN"], password);
    const errors: Error[] = [];
    try {
      const report = await transport(url(server.port, "wrong"), {}, errors).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.equal(report.failure?.code, 13105);
      assert.match(report.failure?.message ?? "", /did not accept Mailroom's login \("535 /);
      assert.match(report.failure?.message ?? "", /check the user name and password in MAILROOM_SMTP_URL\.$/);
      assert.doesNotMatch(report.failure?.message ?? "", /wrong|p:ss/, "no password in the message");
      assert.deepEqual(
        report.recipients.map((r) => r.state),
        ["deferred", "deferred"],
      );
      assert.equal(server.received.length, 0);
      assert.equal(errors.length, 1, "the connection failure is passed to onTransportError");
    } finally {
      await server.close();
    }
  });

  test("STARTTLS opportunistic: upgrades when offered (tls.rejectUnauthorized=false reaches TLS)", async () => {
    const server = await relay({ disabledCommands: ["AUTH"] });
    try {
      const report = await transport(`smtp://127.0.0.1:${server.port}?tls.rejectUnauthorized=false`).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.equal(report.failure, null, report.failure?.message);
      assert.equal(server.received[0]?.secure, true, "the message went over TLS");
    } finally {
      await server.close();
    }
  });

  test("STARTTLS with a certificate that does not verify: a TLS setup failure naming the fix", async () => {
    const server = await relay({ disabledCommands: ["AUTH"] });
    try {
      const report = await transport(`smtp://127.0.0.1:${server.port}`).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.equal(report.failure?.code, 13105);
      assert.match(report.failure?.message ?? "", /^TLS with the relay 127\.0\.0\.1:\d+ failed \(/);
      assert.match(report.failure?.message ?? "", /tls\.rejectUnauthorized=false/);
      assert.equal(server.received.length, 0, "nothing went out in clear text instead");
    } finally {
      await server.close();
    }
  });

  test("STARTTLS required and refused by the relay: nothing is sent", async () => {
    const peer = await scriptedPeer({
      ehlo: "250-scripted.example\r\n250-PIPELINING\r\n250 STARTTLS",
      answer: (command) =>
        command === "STARTTLS" ? "454 4.7.0 TLS not available due to local problem" : undefined,
    });
    try {
      const report = await transport(peer.url, { startTls: "required" }).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.equal(report.failure?.code, 13105);
      assert.match(report.failure?.message ?? "", /refused STARTTLS \("454 4\.7\.0 TLS not available/);
      const commands = peer.sessions[0]?.commands ?? [];
      assert.equal(commands[1], "STARTTLS");
      assert.ok(!commands.some((c) => c.startsWith("MAIL")), commands.join(", "));
    } finally {
      await peer.close();
    }
  });
});

describe("SMTP client: failures", () => {
  test("the relay hangs up in the middle of a transaction: every recipient deferred, relay unreachable", async () => {
    const peer = await scriptedPeer({ endOfData: () => "CLOSE" });
    try {
      const report = await transport(peer.url).send({ envelope: ENVELOPE, raw: RAW });
      assert.deepEqual(
        report.recipients.map((r) => [r.state, r.smtp_code]),
        [
          ["deferred", null],
          ["deferred", null],
        ],
      );
      assert.equal(report.failure?.code, 13104);
      assert.match(report.failure?.message ?? "", /^Could not deliver through the relay 127\.0\.0\.1:\d+: /);
      assert.equal(peer.sessions.length, 1, "a message whose data went out is not retried elsewhere");
    } finally {
      await peer.close();
    }
  });

  test("a relay that goes silent: the socket timeout ends the attempt and says which setting", async () => {
    const peer = await scriptedPeer({
      answer: (command) => (command.startsWith("MAIL") ? "SILENCE" : undefined),
    });
    try {
      const started = Date.now();
      const report = await transport(peer.url, { socketTimeoutMs: 300 }).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.ok(Date.now() - started >= 250, "it waited for the timeout");
      assert.equal(report.failure?.code, 13104);
      assert.match(
        report.failure?.message ?? "",
        /the relay stopped answering \(MAILROOM_SMTP_SOCKET_TIMEOUT_MS\)/,
      );
    } finally {
      await peer.close();
    }
  });

  test("a relay that never greets: the connect timeout says which setting", async () => {
    const peer = await scriptedPeer({ greeting: "SILENCE" });
    try {
      const report = await transport(peer.url, { connectTimeoutMs: 300 }).send({
        envelope: ENVELOPE,
        raw: RAW,
      });
      assert.equal(report.failure?.code, 13104);
      assert.match(report.failure?.message ?? "", /no answer in time \(MAILROOM_SMTP_CONNECT_TIMEOUT_MS\)/);
    } finally {
      await peer.close();
    }
  });

  test("connection refused, and a host name that does not resolve", async () => {
    const closed = await scriptedPeer();
    await closed.close();
    const refused = await transport(closed.url).send({ envelope: ENVELOPE, raw: RAW });
    assert.equal(refused.failure?.code, 13104);
    assert.match(
      refused.failure?.message ?? "",
      /connection refused \(is the relay running, and is the port right\?\)/,
    );
    const unknown = await transport("smtp://no-such-relay.invalid:2525").send({
      envelope: ENVELOPE,
      raw: RAW,
    });
    assert.equal(unknown.failure?.code, 13104);
    assert.match(unknown.failure?.message ?? "", /its host name does not resolve/);
  });

  test("a pooled connection the relay dropped meanwhile: the message goes out on a fresh one", async () => {
    const peer = await scriptedPeer({
      // The first connection dies as its second message starts, before any of its data went out.
      answer: (command, session) =>
        command.startsWith("MAIL") && session.payloads.length === 1 ? "CLOSE" : undefined,
    });
    try {
      const client = transport(peer.url, { poolSize: 1 });
      assert.equal((await client.send({ envelope: ENVELOPE, raw: RAW })).failure, null);
      const second = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(second.failure, null, second.failure?.message);
      assert.equal(peer.sessions.length, 2);
      assert.equal(peer.sessions[1]?.payloads.length, 1);
    } finally {
      await peer.close();
    }
  });
});

describe("SMTP client: the pool", () => {
  test("sends beyond poolSize wait for a connection: 12 messages, at most 2 connections", async () => {
    const server = await relay();
    try {
      const client = transport(`smtp://127.0.0.1:${server.port}`, { poolSize: 2 });
      const reports = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          client.send({ envelope: { from: "a@example.org", to: [`r${i}@example.org`] }, raw: RAW }),
        ),
      );
      for (const report of reports) assert.equal(report.failure, null);
      assert.equal(server.connections, 2);
      for (let i = 0; i < 2; i++) await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(server.connections, 2, "the open connections are reused");
      assert.equal(server.received.length, 12);
    } finally {
      await server.close();
    }
  });

  test("an idle connection says QUIT after the socket timeout", async () => {
    const peer = await scriptedPeer();
    try {
      await transport(peer.url, { socketTimeoutMs: 200 }).send({ envelope: ENVELOPE, raw: RAW });
      const session = peer.sessions[0];
      assert.ok(session);
      await waitFor("the idle connection to close", () => session.closed, 3000);
      assert.equal(session.commands.at(-1), "QUIT");
    } finally {
      await peer.close();
    }
  });

  test("close() fails what is in flight and every later send as unreachable", async () => {
    const peer = await scriptedPeer({ endOfData: () => "SILENCE" });
    try {
      const client = transport(peer.url);
      const inFlight = client.send({ envelope: ENVELOPE, raw: RAW });
      await waitFor("the message data to arrive", () => peer.sessions[0]?.payloads.length === 1, 3000);
      await client.close();
      const report = await inFlight;
      assert.equal(report.failure?.code, 13104);
      assert.match(report.failure?.message ?? "", /Connection pool was closed/);
      const later = await client.send({ envelope: ENVELOPE, raw: RAW });
      assert.equal(later.failure?.code, 13104);
      await waitFor("the relay to see the connection go", () => peer.sessions[0]?.closed, 3000);
    } finally {
      await peer.close();
    }
  });

  test("close() while idle leaves nothing open: the process exits by itself", async () => {
    const server = await relay();
    const smtpModule = new URL("../src/delivery/transports/smtp.js", import.meta.url).href;
    const script = `
      const [, modulePath, port, mode] = process.argv;
      const { SmtpTransport } = await import(modulePath);
      const transport = new SmtpTransport({ url: "smtp://127.0.0.1:" + port, poolSize: 2,
        startTls: "opportunistic", connectTimeoutMs: 5000, socketTimeoutMs: 60000 }, () => {});
      const report = await transport.send({ envelope: { from: "a@example.org", to: ["b@example.org"] },
        raw: "Subject: x\\r\\n\\r\\nhi\\r\\n" });
      if (mode === "close") await transport.close();
      console.log(report.recipients[0].state);`;
    const run = (mode: string) => {
      const child = spawn(process.execPath, [
        "--input-type=module",
        "-e",
        script,
        smtpModule,
        String(server.port),
        mode,
      ]);
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      return { child, exited, output: () => output.trim() };
    };
    try {
      const closing = run("close");
      const timeout = new Promise<"still running">((resolve) =>
        setTimeout(() => resolve("still running"), 5000),
      );
      assert.equal(await Promise.race([closing.exited, timeout]), 0);
      assert.equal(closing.output(), "accepted");

      // The control: without close() the idle pooled connection keeps the process alive.
      const keeping = run("keep");
      await waitFor("the control to have sent its message", () => keeping.output() === "accepted", 5000);
      const early = await Promise.race([
        keeping.exited,
        new Promise<"still running">((resolve) => setTimeout(() => resolve("still running"), 500)),
      ]);
      keeping.child.kill();
      assert.equal(early, "still running");
    } finally {
      await server.close();
    }
  });
});
