import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fastQuerystring from "fast-querystring";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { relayFailureLog } from "../src/delivery/relay-failure-log.js";
import {
  formatMailbox,
  formatMailboxList,
  isValidAddress,
  type Mailbox,
  parseAddressList,
  readAddressList,
  TooManyAddressesError,
} from "../src/domain/addresses.js";
import { checkAttachments } from "../src/domain/attachments.js";
import type { ApiError } from "../src/domain/errors.js";
import { isSid, newSid } from "../src/domain/ids.js";
import { iso8601, parseFilterDate, rfc2822 } from "../src/http/dates.js";
import { parseFormBody } from "../src/http/form.js";
import { findDuplicateKey } from "../src/http/json-keys.js";
import { closest } from "../src/http/validation-errors.js";
import { EmailMessageModel, type EmailMessageSource, readEmailRequest } from "../src/model/email-message.js";
import { jsonString } from "../src/model/json-text.js";
import {
  type AttachmentRef,
  type EmailContent,
  readStoredContent,
  storeContent,
} from "../src/model/stored-content.js";
import { GroupCommit } from "../src/store/group-commit.js";

describe("addresses", () => {
  test("valid and invalid addresses", () => {
    for (const ok of [
      "a@example.org",
      "first.last+tag@sub.example.co.uk",
      "x@[127.0.0.1]",
      "o'brien@example.ie",
    ]) {
      assert.ok(isValidAddress(ok), ok);
    }
    for (const bad of [
      "",
      "a",
      "a@",
      "@example.org",
      "a@b",
      "a..b@example.org",
      "a@-example.org",
      "a b@example.org",
      "a@exa_mple.org",
    ]) {
      assert.ok(!isValidAddress(bad), bad);
    }
  });

  test("lists keep display names, quote them when needed, and fail whole on one bad item", () => {
    const list = parseAddressList(' a@example.org , "Doe, Jane" <jane@example.org>,Bob <bob@example.org> ');
    assert.deepEqual(list.map(formatMailbox), [
      "a@example.org",
      '"Doe, Jane" <jane@example.org>',
      "Bob <bob@example.org>",
    ]);
    assert.throws(() => parseAddressList("a@example.org, nope"), /"nope" is not a valid email address/);
    assert.throws(() => parseAddressList(" , "), /no email address/);
  });

  test("lists of bare addresses (read without the general reader) mean what the general reader says", () => {
    for (const input of [
      "a@example.org",
      " a@example.org ",
      "a@example.org,b@example.org",
      "first.last+tag@sub.example.co.uk ,  x_y%z-1@example.org",
      "A.B@Example.ORG, a.b@example.org",
      // Not bare: these take the general reader.
      "a@example.org,,b@example.org",
      "a@example.org, Bob <bob@example.org>",
    ]) {
      assert.deepEqual(parseAddressList(input), readAddressList(input), input);
    }
    // An invalid bare address gets the general reader's error message.
    assert.throws(
      () => parseAddressList("a..b@example.org"),
      /"a\.\.b@example\.org" is not a valid email address/,
    );
  });

  test("what could be read as another address is refused, never reinterpreted (issue 12, item 10)", () => {
    const refused: Array<[string, RegExp]> = [
      [
        "Bob <rcpt@x.org<evil@attacker.com>>",
        /"rcpt@x\.org<evil@attacker\.com" is not a valid email address/,
      ],
      [
        "r cpt@x.org",
        /"r cpt@x\.org" is not a valid email address \(if it was "r\+cpt@x\.org": a "\+" sent unencoded/,
      ],
      ["Bob <a@x.org> <b@y.org>", /"<b@y\.org>" follows "Bob <a@x\.org>"; separate addresses with commas/],
      ["a@example.org b@example.org", /is not a valid email address/],
      ["Bob a@x.org", /is not a valid email address/],
      ["rcpt@[999.1.1.1]", /"rcpt@\[999\.1\.1\.1\]" is not a valid email address/],
      ["a@[IPv6:fe80::1%eth0]", /is not a valid email address/],
      ["a@x.org <b@y.org>", /has "@" outside quotes in a display name/],
      ["a (comment) <a@x.org>", /comments in parentheses are not supported/],
      ["team: a@x.org;", /address groups \("team: …;"\) are not supported/],
      ['"Bob <bob@x.test>', /has no closing quote/],
      ["Bob <bob@x.test", /has no closing ">"/],
      ['"Bob" bob@x.test', /has "@" outside quotes|without an <address>/],
      ['"a"@x.org', /without an <address>|outside quotes/],
      [`${"l".repeat(65)}@x.org`, /is not a valid email address/],
      [`a@${"d".repeat(250)}.org`, /is not a valid email address/],
    ];
    for (const [input, message] of refused) assert.throws(() => parseAddressList(input), message, input);
    const kept: Array<[string, string]> = [
      ["bob@x.test", "bob@x.test"],
      ["<bob@x.test>", "<bob@x.test>"],
      ["< bob@x.test >", "<bob@x.test>"],
      ["Bob <bob@x.test>", "Bob <bob@x.test>"],
      ['"Bob, Jr." <bob@x.test>', '"Bob, Jr." <bob@x.test>'],
      ["John Q. Public <j@x.test>", '"John Q. Public" <j@x.test>'],
      ['Bob "Q" Smith <a@x.test>', "Bob Q Smith <a@x.test>"],
      ["Zoë Ölund <zoe@x.test>", '"Zoë Ölund" <zoe@x.test>'],
      ['"Eve \\" Bcc: v@evil.test" <eve@x.test>', '"Eve \\" Bcc: v@evil.test" <eve@x.test>'],
      ["rcpt@[192.0.2.1], a@[IPv6:2001:db8::1]", "rcpt@[192.0.2.1], a@[IPv6:2001:db8::1]"],
      ["a@x.test,, b@y.test", "a@x.test, b@y.test"],
      [`${"l".repeat(64)}@x.test`, `${"l".repeat(64)}@x.test`],
    ];
    for (const [input, canonical] of kept)
      assert.equal(formatMailboxList(parseAddressList(input)), canonical, input);
    // What is stored is read back as the same mailboxes (migrations and composing read stored lists).
    for (const [input] of kept) {
      const once = parseAddressList(input);
      assert.deepEqual(parseAddressList(formatMailboxList(once)), once, input);
    }
  });

  test("a list stops being read at the first mailbox over the limit (issue 12, item 9)", () => {
    assert.equal(parseAddressList("a@x.org, b@x.org", 2).length, 2);
    for (const input of ["a@x.org, b@x.org, c@x.org", "A <a@x.org>, b@x.org, c@x.org"]) {
      assert.throws(() => parseAddressList(input, 2), TooManyAddressesError, input);
    }
  });
});

describe("email request validation", () => {
  const base = { From: "a@example.org", To: "b@example.org", Body: "body", Subject: "subject" };

  test("an empty Body is allowed", () => {
    assert.equal(readEmailRequest({ ...base, Body: "" }).content.body, "");
  });

  test("repeated To is joined", () => {
    const email = readEmailRequest({ ...base, To: ["b@example.org", "c@example.org"] });
    assert.deepEqual(
      email.content.to.map((m) => m.address),
      ["b@example.org", "c@example.org"],
    );
  });

  test("StatusCallback must be an http(s) URL", () => {
    assert.equal(
      readEmailRequest({ ...base, StatusCallback: "https://hooks.example.org/x" }).statusCallback,
      "https://hooks.example.org/x",
    );
    assert.throws(
      () => readEmailRequest({ ...base, StatusCallback: "ftp://x" }),
      (e: ApiError) => e.code === 13019,
    );
    assert.throws(
      () => readEmailRequest({ ...base, StatusCallback: "not a url" }),
      (e: ApiError) => e.code === 13019,
    );
  });

  test("a body with a control character other than tab/CR/LF is refused", () => {
    assert.throws(
      () => readEmailRequest({ ...base, Body: "bell\u0007" }),
      (e: ApiError) => e.code === 13018,
    );
    assert.equal(readEmailRequest({ ...base, Body: "tab\tcr\rlf\n" }).content.body, "tab\tcr\rlf\n");
  });

  test("Body with Html or Text is refused: one or the other", () => {
    assert.throws(
      () => readEmailRequest({ ...base, Html: "<p>x</p>" }),
      (e: ApiError) => e.code === 13022,
    );
    const { content } = readEmailRequest({
      From: base.From,
      To: base.To,
      Subject: "s",
      Html: "<p>x</p>",
      Text: "x",
    });
    assert.deepEqual([content.body, content.type, content.html, content.text], [null, null, "<p>x</p>", "x"]);
  });

  test("a bracketed bare address keeps its brackets; a named one is as before", () => {
    const { content } = readEmailRequest({ ...base, To: "<bob@x.test>, Bob <bob2@x.test>, carol@x.test" });
    assert.equal(formatMailboxList(content.to), "<bob@x.test>, Bob <bob2@x.test>, carol@x.test");
  });
});

describe("attachment checks", () => {
  const exe = Buffer.from("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00PE\x00\x00", "latin1");
  const upload = (filename: string, content: Buffer) => ({
    filename,
    contentType: "application/octet-stream",
    contentId: null,
    content,
  });
  test("a policy with no blocked types lets an executable through; the default list does not", async () => {
    const open = await checkAttachments([upload("tool.exe", exe)], {
      maxMessageBytes: 1024,
      blockedExtensions: [],
    });
    assert.equal(open[0]?.ref.size, exe.length);
    await assert.rejects(
      checkAttachments([upload("tool.pdf", exe)], { maxMessageBytes: 1024, blockedExtensions: ["exe"] }),
      (e: ApiError) => e.code === 13028,
    );
    await assert.rejects(
      checkAttachments([upload("run.JS", Buffer.from("alert(1)"))], {
        maxMessageBytes: 1024,
        blockedExtensions: ["js"],
      }),
      (e: ApiError) => e.code === 13028,
    );
  });
});

describe("unknown parameters: the known one meant", () => {
  const known = ["From", "To", "CC", "BCC", "Subject", "Body", "ReplyTo", "Headers", "Tags", "Attachments"];
  test("case, punctuation and small typos find their parameter; unrelated names find none", () => {
    assert.equal(closest("Cc", known), "CC");
    assert.equal(closest("Reply-To", known), "ReplyTo");
    assert.equal(closest("reply_to", known), "ReplyTo");
    assert.equal(closest("Subjet", known), "Subject");
    assert.equal(closest("Attachment", known), "Attachments");
    assert.equal(closest("Priority", known), undefined);
    assert.equal(closest("X", known), undefined);
  });
});

describe("dates", () => {
  test("RFC 2822 as Restcomm writes it", () => {
    assert.equal(rfc2822(Date.UTC(2014, 1, 5, 10, 12, 32)), "Wed, 5 Feb 2014 10:12:32 +0000");
    // The last second formatted is kept: the same second reads the same, the next one does not.
    assert.equal(rfc2822(Date.UTC(2014, 1, 5, 10, 12, 32, 999)), "Wed, 5 Feb 2014 10:12:32 +0000");
    assert.equal(rfc2822(Date.UTC(2014, 1, 5, 10, 12, 33)), "Wed, 5 Feb 2014 10:12:33 +0000");
    assert.equal(rfc2822(Date.UTC(2014, 1, 5, 10, 12, 32, 500)), "Wed, 5 Feb 2014 10:12:32 +0000");
    assert.equal(rfc2822(Date.UTC(1969, 11, 31, 23, 59, 59, 500)), "Wed, 31 Dec 1969 23:59:59 +0000");
  });
  test("ISO 8601 as toISOString writes it, whatever second was formatted last", () => {
    const instants = [0, 1, 999, 1000, 1_795_967_293_007, 1_795_967_293_070, 1_795_967_293_700, -1, -1001];
    for (const ms of [...instants, 253_402_300_799_999, 253_402_300_800_000, -62_167_219_200_001, 0.5]) {
      assert.equal(iso8601(ms), new Date(ms).toISOString(), String(ms));
    }
    assert.throws(() => iso8601(Number.NaN), RangeError);
  });
  test("filter dates: a day covers the whole day; a date-time is one instant", () => {
    assert.deepEqual(parseFilterDate("2014-02-05"), {
      start: Date.UTC(2014, 1, 5),
      end: Date.UTC(2014, 1, 6),
    });
    const at = Date.UTC(2014, 1, 5, 10, 0, 0);
    assert.deepEqual(parseFilterDate("2014-02-05T10:00:00Z"), { start: at, end: at + 1 });
    assert.equal(parseFilterDate("05/02/2014"), undefined);
    assert.equal(parseFilterDate("2014-13-45"), undefined);
    assert.equal(parseFilterDate("2024-02-30"), undefined);
    assert.deepEqual(parseFilterDate("2024-02-29"), {
      start: Date.UTC(2024, 1, 29),
      end: Date.UTC(2024, 2, 1),
    });
  });
});

describe("configuration", () => {
  test("defaults", () => {
    const config = loadConfig({});
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.port, 8080);
    assert.equal(config.dataDir, "./data");
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.smtpUrl, undefined);
    assert.equal(config.deliveryConcurrency, 300, "docs/performance.md: 20 -> 100 -> 300");
    assert.equal(
      config.smtpPoolSize,
      20,
      "docs/performance.md: 5 -> 20, as Postfix's destination concurrency",
    );
  });
  test("delivery mode: relay when a relay is set, capture otherwise; relay without one is refused", () => {
    const relay = "smtp://127.0.0.1:2525";
    assert.equal(loadConfig({}).deliveryMode, "capture");
    assert.equal(loadConfig({ MAILROOM_SMTP_URL: relay }).deliveryMode, "relay");
    assert.equal(
      loadConfig({ MAILROOM_SMTP_URL: relay, MAILROOM_DELIVERY_MODE: "capture" }).deliveryMode,
      "capture",
    );
    assert.throws(() => loadConfig({ MAILROOM_DELIVERY_MODE: "relay" }), /needs MAILROOM_SMTP_URL/);
    assert.throws(
      () => loadConfig({ MAILROOM_DELIVERY_MODE: "pigeon" }),
      /MAILROOM_DELIVERY_MODE must be one of/,
    );
    assert.deepEqual(loadConfig({ MAILROOM_DNS_SERVERS: "127.0.0.1:5300, ::1" }).dnsServers, [
      { address: "127.0.0.1", port: 5300 },
      { address: "::1", port: 53 },
    ]);
    assert.throws(() => loadConfig({ MAILROOM_DNS_SERVERS: "ns.example" }), /MAILROOM_DNS_SERVERS must be/);
  });
  test("the body limit has room for the largest message's attachments in base64, unless set", () => {
    assert.equal(loadConfig({}).maxMessageBytes, 10 * 1024 * 1024);
    assert.equal(loadConfig({}).bodyLimitBytes, 15_029_590, "ceil(10 MiB * 4 / 3) + 1 MiB, as the docs say");
    assert.equal(
      loadConfig({ MAILROOM_MAX_MESSAGE_BYTES: "3000000" }).bodyLimitBytes,
      4_000_000 + 1024 * 1024,
    );
    assert.equal(loadConfig({ MAILROOM_BODY_LIMIT: "2048" }).bodyLimitBytes, 2048);
  });
  test("blocked attachment types: a default list, a list of one's own, or none", () => {
    assert.ok(loadConfig({}).blockedAttachmentExtensions.includes("exe"));
    assert.deepEqual(loadConfig({ MAILROOM_BLOCKED_ATTACHMENTS: ".EXE, js" }).blockedAttachmentExtensions, [
      "exe",
      "js",
    ]);
    assert.deepEqual(loadConfig({ MAILROOM_BLOCKED_ATTACHMENTS: "none" }).blockedAttachmentExtensions, []);
    assert.throws(
      () => loadConfig({ MAILROOM_BLOCKED_ATTACHMENTS: "exe,../x" }),
      /MAILROOM_BLOCKED_ATTACHMENTS must be comma-separated file extensions/,
    );
  });
  test("flags win over the environment; bad values name the setting", () => {
    assert.equal(loadConfig({ MAILROOM_PORT: "9000" }, { port: "9001" }).port, 9001);
    assert.throws(() => loadConfig({ MAILROOM_PORT: "70000" }), /MAILROOM_PORT must be between 0 and 65535/);
    assert.throws(() => loadConfig({ MAILROOM_LOG_LEVEL: "loud" }), ConfigError);
    assert.throws(
      () => loadConfig({ MAILROOM_DATABASE_URL: "mysql://x" }),
      /MAILROOM_DATABASE_URL must start with postgres/,
    );
  });
});

/** A group commit whose transactions stay in flight until `finish()` (each one recorded when it starts). */
function heldCommits(lanes: number) {
  const commits: number[][] = [];
  let release!: () => void;
  let released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const group = new GroupCommit<number>(
    async (batch) => {
      commits.push(batch);
      await released;
      return [];
    },
    { lanes },
  );
  const finish = () => {
    release();
    released = Promise.resolve();
  };
  return { group, commits, finish };
}

async function waitForCommits(commits: number[][], count: number): Promise<void> {
  for (let turn = 0; commits.length < count; turn++) {
    if (turn === 1000) throw new Error(`${commits.length} transactions started, ${count} expected`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("group commit", () => {
  test("adds made in the same turn share one commit", async () => {
    const commits: number[][] = [];
    const group = new GroupCommit<number>(async (batch) => {
      commits.push(batch);
      return [];
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => group.add(i)));
    assert.deepEqual(commits, [Array.from({ length: 20 }, (_, i) => i)]);
  });

  test("each caller gets the commit's result for its own item", async () => {
    const group = new GroupCommit<number, number>(async (batch) => batch.map((n) => n * 10));
    assert.deepEqual(await Promise.all([1, 2, 3].map((n) => group.add(n))), [10, 20, 30]);
  });

  test("with one lane, what arrives during a commit waits and then commits together", async () => {
    const { group, commits, finish } = heldCommits(1);
    const first = group.add(1);
    await waitForCommits(commits, 1);
    const later = [group.add(2), group.add(3)];
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(commits, [[1]], "no second transaction while the first is in flight");
    finish();
    await Promise.all([first, ...later]);
    assert.deepEqual(commits, [[1], [2, 3]]);
  });

  test("with two lanes, a second batch commits while the first is still in flight", async () => {
    const { group, commits, finish } = heldCommits(2);
    const first = group.add(1);
    await waitForCommits(commits, 1);
    const second = [group.add(2), group.add(3)];
    await waitForCommits(commits, 2);
    const third = group.add(4);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(commits, [[1], [2, 3]], "both lanes busy: the third waits");
    finish();
    await Promise.all([first, ...second, third]);
    assert.deepEqual(commits, [[1], [2, 3], [4]]);
  });

  test("one bad item fails alone; its neighbours are committed", async () => {
    const committed: number[] = [];
    const group = new GroupCommit<number>(async (batch) => {
      if (batch.includes(13)) throw new Error("unlucky");
      committed.push(...batch);
      return [];
    });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => group.add(i)));
    assert.deepEqual(
      results.map((r) => r.status),
      Array.from({ length: 20 }, (_, i) => (i === 13 ? "rejected" : "fulfilled")),
    );
    assert.equal((results[13] as PromiseRejectedResult).reason.message, "unlucky");
    assert.deepEqual(
      committed.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 13),
    );
  });
});

describe("SIDs", () => {
  test("32 hex digits that start with the creation time, so SIDs sort by creation; the rest is random", () => {
    const at = Date.UTC(2026, 10, 27);
    const sid = newSid("EM", at);
    assert.ok(isSid(sid, "EM"), sid);
    assert.equal(Number.parseInt(sid.slice(2, 14), 16), at);
    const later = newSid("EM", at + 1);
    assert.ok(sid < later, "a later SID sorts after an earlier one");
    const sameMillisecond = new Set(Array.from({ length: 1000 }, () => newSid("EM", at).slice(14)));
    assert.equal(sameMillisecond.size, 1000, "20 random hex digits tell apart SIDs of one millisecond");
  });
});

describe("relay failure log", () => {
  test("the first failure is logged at once, then at most one line per 10 s with the failures between", () => {
    const lines: Array<{ failuresSinceLastLog: number }> = [];
    let now = 1_000_000;
    const log = relayFailureLog(
      (line) => lines.push(line),
      () => now,
    );
    const refused = new Error("connect ECONNREFUSED");
    log(refused);
    for (let i = 0; i < 50; i++) {
      now += 100;
      log(refused);
    }
    assert.equal(lines.length, 1, "51 failures within 5 s: one line");
    now += 10_000;
    log(refused);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]?.failuresSinceLastLog, 50);
  });
});

describe("form bodies", () => {
  test("parsed as fast-querystring (@fastify/formbody's parser) parses them", () => {
    const corpus = [
      "",
      "a=1",
      "a=1&b=2",
      "To=a%40example.org&To=b%40example.org&To=c%40example.org",
      "Body=x+y+z&Subject=%2B1+%2b+2",
      "From=Jos%C3%A9+%3Cjose%40example.org%3E",
      "Body=caf\u00e9+au+lait",
      "Body=100%25&Bad=50%&Worse=%Z1%",
      "novalue&=onlyvalue&&k=&k=v=w",
      "a+b=c+d&a%20b=e",
      "__proto__=x&constructor=y&toString=z",
      "Body=%0D%0ABcc%3A+victim%40example.org",
      "emoji=%F0%9F%98%80+%F0%9F%98%81",
    ];
    for (const input of corpus) {
      const expected = { ...fastQuerystring.parse(input) };
      const actual = parseFormBody(Buffer.from(input, "utf8"));
      assert.equal(Object.getPrototypeOf(actual), null, input);
      assert.deepEqual({ ...actual }, expected, input);
    }
  });

  test("text that is not UTF-8 is refused, naming the parameter, never replaced (issue 12, item 12)", () => {
    const refused: Array<[Buffer, RegExp]> = [
      [Buffer.from("Subject=caf%E9"), /^Subject is not valid UTF-8 \(its percent-escapes/],
      [Buffer.from("To=a%40x.org&Body=%E0%A4%A"), /^Body is not valid UTF-8/],
      [Buffer.from("Lone=%D8%00"), /^Lone is not valid UTF-8/],
      [Buffer.from("%E9=x"), /^A parameter name is not valid UTF-8/],
      [
        Buffer.from("From=a%40x.org&Subject=caf\xe9&Body=x", "latin1"),
        /^Subject is not valid UTF-8 \(byte 0xE9 at offset 26/,
      ],
      [
        Buffer.from("Sub\xe9ject=x", "latin1"),
        /^A parameter name is not valid UTF-8 \(byte 0xE9 at offset 3/,
      ],
      // An encoded surrogate (CESU-8) and an overlong slash are not UTF-8 either.
      [Buffer.from([0x42, 0x3d, 0xed, 0xa0, 0x80]), /^B is not valid UTF-8 \(byte 0xED at offset 2/],
      [Buffer.from("B=%C0%AF"), /^B is not valid UTF-8/],
    ];
    for (const [body, message] of refused) {
      assert.throws(
        () => parseFormBody(Buffer.from(body)),
        (e: ApiError) => e.code === 20011 && message.test(e.message),
        body.toString("latin1"),
      );
    }
    // A % that starts no escape stays as written, the escapes around it decoded.
    assert.deepEqual({ ...parseFormBody(Buffer.from("Body=100%25+and+50%")) }, { Body: "100% and 50%" });
    assert.deepEqual({ ...parseFormBody(Buffer.from("Body=caf%C3%A9+%EF%BF%BD")) }, { Body: "café \ufffd" });
  });
});

describe("JSON keys", () => {
  test("a key given twice is found at any depth, with where it is (issue 12, item 11)", () => {
    const cases: Array<[string, { key: string; object: Array<string | number> } | undefined]> = [
      ['{"From":"a@x","From":"evil@y"}', { key: "From", object: [] }],
      ['{"Headers":{"X-A":"1","X-B":"2","X-A":"3"}}', { key: "X-A", object: ["Headers"] }],
      [
        '{"Attachments":[{"Filename":"a"},{"Filename":"b","Filename":"c"}]}',
        { key: "Filename", object: ["Attachments", 1] },
      ],
      ['{"From":"a","\\u0046rom":"b"}', { key: "From", object: [] }],
      ['{"a":"\\"From\\":","From":1,"b":["From","From"]}', undefined],
      ['{"a":[{},{"b":1}],"c":{"d":{"e":1}},"b":1,"e":{}}', undefined],
      ['{"X":"1","x":"2"}', undefined],
      ['[{"a":1},{"a":2}]', undefined],
      ['{"a":"\\\\","b":"\\\\\\"","a":0}', { key: "a", object: [] }],
    ];
    for (const [text, expected] of cases) {
      JSON.parse(text);
      assert.deepEqual(findDuplicateKey(text), expected, text);
    }
  });
});

describe("JSON text of a resource", () => {
  const message: EmailMessageSource = {
    sid: "EM0123",
    account_sid: "AC0123",
    from_address: '"Ada \\"L\\"" <ada@example.com>',
    to_addresses: "bob@example.net",
    status: "queued",
    message_id: "<EM0123@example.com>",
    status_callback: null,
    error_code: null,
    error_message: null,
    num_attempts: 0,
    date_created: 1_795_967_293_317,
    date_updated: 1_795_967_293_317,
    date_sent: 1_795_967_293_317,
    date_delivered: null,
    next_attempt_at: 1_795_967_293_317,
    send_at: null,
    content_purged_at: null,
    content: {
      from: { name: "", address: "ada@example.com" },
      to: [{ name: "", address: "bob@example.net" }],
      cc: [],
      bcc: [{ name: "Q", address: "q@example.org" }],
      reply_to: [],
      subject: 'Caf\u00e9 \u{1f600} \\ "quoted"',
      body: "line\n\ttab\u0001 lone \ud800 end",
      type: "text/plain; charset=UTF-8",
      html: null,
      text: null,
      headers: { "X-Campaign": "spring" },
      tags: {},
      attachments: [
        { filename: "a.txt", content_type: "text/plain", size: 3, content_id: null, sha256: "ab" },
      ],
      template_sid: "ET0123",
    },
  };

  test("is what JSON.stringify makes of the JSON object: same keys, order and escapes", () => {
    const variants: EmailMessageSource[] = [
      message,
      { ...message, content: { ...message.content, body: "x".repeat(1024), subject: "plain" } },
      {
        ...message,
        status: "sent",
        error_code: 3001,
        error_message: "a\u2028b",
        date_delivered: 5,
        content_purged_at: 7,
      },
      // Records written key by key: escapes in keys and values, integer-like keys first as Object.keys orders them.
      {
        ...message,
        content: {
          ...message.content,
          headers: { "X-B": "1", 'X-"Q"': "v\u0001\\", "2": "two", "1": "\ud800" },
          tags: { t: "caf\u00e9 \u{1f600}" },
        },
      },
    ];
    for (const source of variants) {
      const resource = EmailMessageModel.render(source);
      assert.equal(resource.jsonText?.(), JSON.stringify(resource.json?.()));
    }
  });

  test("strings are written as JSON.stringify writes them", () => {
    for (const text of [
      "",
      "plain",
      '"',
      "\\",
      "\u001f",
      "\u007f",
      "\u2028",
      "\ud83d\ude00",
      "\udc00",
      "é",
    ]) {
      assert.equal(jsonString(text), JSON.stringify(text));
    }
  });

  test("stored content is what JSON.stringify writes of it with the texts as null, and reads back whole", () => {
    const plain = readEmailRequest({
      From: "bench@example.com",
      To: 'Ann "Q" <ann@example.net>, <bob@example.net>',
      Subject: "Tab\there, \u00e9, \ud83d\ude00",
      Body: "x".repeat(1024),
    }).content;
    // Every field set (Required: a field added to EmailContent, Mailbox or AttachmentRef fails to compile
    // here until it is given a value, and then this test fails until contentJson writes it).
    const mailbox: Required<Mailbox> = { name: "Full", address: "full@example.org", bracketed: true };
    const attachment: Required<AttachmentRef> = {
      filename: "b.png",
      content_type: "image/png",
      size: 4,
      content_id: "logo",
      sha256: "cd",
    };
    const everyField: Required<EmailContent> = {
      from: mailbox,
      to: [mailbox],
      cc: [mailbox],
      bcc: [mailbox],
      reply_to: [mailbox],
      subject: "All",
      body: null,
      type: null,
      html: "<p>All</p>",
      text: "All",
      headers: { "X-All": "1" },
      tags: { all: "1" },
      attachments: [attachment],
      template_sid: "ET0456",
    };
    const variants: EmailContent[] = [
      everyField,
      plain,
      { ...plain, body: null, type: null, html: "<p>Hi</p>", text: "Hi", template_sid: "ET0123" },
      {
        ...plain,
        cc: [{ name: "C\\d", address: "c@example.org" }],
        headers: { "X-One": 'a "quoted" \\ value', "X-Two": "" },
        tags: { campaign: "spring", "k\u0001": "v" },
        attachments: [
          { filename: "a.txt", content_type: "text/plain", size: 3, content_id: null, sha256: "ab" },
        ],
        template_sid: null,
      },
    ];
    for (const content of variants) {
      const stored = storeContent(content);
      assert.equal(stored.json, JSON.stringify({ ...content, body: null, html: null, text: null }));
      assert.deepEqual(readStoredContent(stored), content);
    }
  });
});
