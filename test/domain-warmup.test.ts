import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../src/config/config.js";
import { countsTowardLimit } from "../src/delivery/history.js";
import { DomainGate, parseDomainRate } from "../src/delivery/mx/domain-gate.js";
import { geometricSteps, parseWarmup, stepAt } from "../src/delivery/mx/warmup.js";

/** Warm-up schedules (MAILROOM_DOMAIN_WARMUP): the format, the arithmetic, and the gate, on an injected clock. */

const DAY = 86_400_000;
const HOUR = 3_600_000;
const DEC_1 = Date.parse("2026-12-01T00:00:00Z");

describe("warm-up schedules are read from MAILROOM_DOMAIN_WARMUP", () => {
  test("a range grows by the same factor each step, from its start to its end", () => {
    const schedule = parseWarmup(" Gmail.com = 50/d..10000/d over 30d from 2026-12-01");
    assert.equal(schedule.domain, "gmail.com");
    assert.equal(schedule.startsAt, DEC_1);
    assert.equal(schedule.stepMs, DAY);
    assert.equal(schedule.steps.length, 30);
    assert.equal(schedule.steps[0], 50);
    assert.equal(schedule.steps[1], 60);
    assert.equal(schedule.steps[29], 10_000);
    for (let i = 1; i < 30; i++)
      assert.ok((schedule.steps[i] as number) >= (schedule.steps[i - 1] as number));
    // Hourly steps over two days: 48 of them.
    assert.equal(parseWarmup("*=10/h..1000/h over 2d from 2026-12-01").steps.length, 48);
    assert.deepEqual(geometricSteps(10, 1000, 3), [10, 100, 1000]);
    assert.deepEqual(geometricSteps(7, 7, 1), [7]);
  });

  test("a list gives the steps as written; a date-time with a zone starts at that time", () => {
    const schedule = parseWarmup("yahoo.com=200, 500,1000/d from 2026-12-01T09:30+01:00");
    assert.deepEqual(schedule.steps, [200, 500, 1000]);
    assert.equal(schedule.startsAt, Date.parse("2026-12-01T08:30:00Z"));
    assert.equal(
      parseWarmup("*=5/m from 2026-12-01T08:00:00.250Z").startsAt,
      Date.parse("2026-12-01T08:00:00.250Z"),
    );
  });

  test("bad schedules are refused at start, naming the setting and what is wrong", () => {
    const refused = (value: string, pattern: RegExp) =>
      assert.throws(
        () => loadConfig({ MAILROOM_DELIVERY_MODE: "mx", MAILROOM_DOMAIN_WARMUP: value }),
        (error) =>
          error instanceof ConfigError &&
          /^MAILROOM_DOMAIN_WARMUP: /.test(error.message) &&
          pattern.test(error.message),
      );
    refused("gmail.com=50/d..10000/d over 30d", /expected domain=schedule from DATE/);
    refused("gmail.com=50/d..10000/d over 30d from 12/01/2026", /not a date/);
    refused("gmail.com=50/d..10000/d over 30d from 2026-12-01T08:00", /not a date/);
    refused("gmail.com=50/d..10000/h over 30d from 2026-12-01", /same unit/);
    refused("gmail.com=50/d..10000/d over 36h from 2026-12-01", /whole number of steps/);
    refused("gmail.com=50/d..10000/d over 12h from 2026-12-01", /whole number of steps/);
    refused("gmail.com=500/d..100/d over 30d from 2026-12-01", /at least its start/);
    refused("gmail.com=0/d..100/d over 30d from 2026-12-01", /at least 1/);
    refused("gmail.com=10,0,20/d from 2026-12-01", /at least 1 message/);
    refused("gmail.com=10/s..100/s over 1d from 2026-12-01", /86400 steps is more than 10000/);
    refused("gmail.com=10/w..100/w over 4w from 2026-12-01", /expected START\/unit\.\.END\/unit/);
    refused("gmail.com=10/d from 2026-12-01, yahoo.com=10/d from 2026-12-01", /separated by ";"/);
    refused(
      "gmail.com=10/d from 2026-12-01; Gmail.com.=20/d from 2026-12-02",
      /gmail\.com has two schedules/,
    );
  });

  test("unset, there is no warm-up; set, every schedule is kept", () => {
    assert.deepEqual(loadConfig({ MAILROOM_DELIVERY_MODE: "mx" }).domainWarmup, []);
    const config = loadConfig({
      MAILROOM_DELIVERY_MODE: "mx",
      MAILROOM_DOMAIN_WARMUP: "gmail.com=50/d..10000/d over 30d from 2026-12-01; *=20,50/h from 2026-12-01;",
    });
    assert.deepEqual(
      config.domainWarmup.map((s) => [s.domain, s.steps.length, s.stepMs]),
      [
        ["gmail.com", 30, DAY],
        ["*", 2, HOUR],
      ],
    );
  });
});

describe("the allowance of a step", () => {
  const schedule = parseWarmup("w.example=100,200,400/d from 2026-12-01");

  test("day 0, day N, before the start and after the end", () => {
    assert.deepEqual(stepAt(schedule, DEC_1), { index: 0, allowance: 100, endsAt: DEC_1 + DAY });
    assert.deepEqual(stepAt(schedule, DEC_1 + DAY - 1), { index: 0, allowance: 100, endsAt: DEC_1 + DAY });
    assert.deepEqual(stepAt(schedule, DEC_1 + 2 * DAY + 5), {
      index: 2,
      allowance: 400,
      endsAt: DEC_1 + 3 * DAY,
    });
    // Before the start, the first step's allowance, counted per day as well.
    assert.deepEqual(stepAt(schedule, DEC_1 - 1), { index: -1, allowance: 100, endsAt: DEC_1 });
    // After the last step the warm-up is over.
    assert.equal(stepAt(schedule, DEC_1 + 3 * DAY), undefined);
  });
});

describe("the gate with a warm-up (injected clock)", () => {
  test("over the day's allowance a message waits for the next day; the next day allows more; then no limit", () => {
    let now = DEC_1 + 10 * HOUR;
    const gate = new DomainGate([], 1000, () => now, [parseWarmup("w.example=2,3/d from 2026-12-01")]);
    assert.deepEqual(gate.admit("w.example", "m1"), { go: true });
    assert.deepEqual(gate.admit("w.example", "m2"), { go: true });
    assert.deepEqual(gate.admit("w.example", "m3"), {
      go: false,
      until: DEC_1 + DAY,
      why: "warmup",
      allowance: 2,
    });
    assert.deepEqual(gate.admit("w.example", "m4"), {
      go: false,
      until: DEC_1 + DAY,
      why: "warmup",
      allowance: 2,
    });
    // Another domain has no schedule and no limit.
    for (let i = 0; i < 10; i++) assert.deepEqual(gate.admit("other.example", `o${i}`), { go: true });
    now = DEC_1 + DAY;
    for (const key of ["m3", "m4", "m5"]) assert.deepEqual(gate.admit("w.example", key), { go: true });
    assert.deepEqual(gate.admit("w.example", "m6"), {
      go: false,
      until: DEC_1 + 2 * DAY,
      why: "warmup",
      allowance: 3,
    });
    now = DEC_1 + 2 * DAY;
    for (let i = 0; i < 50; i++) assert.deepEqual(gate.admit("w.example", `late${i}`), { go: true });
  });

  test("a backlog is given places in the later steps, in order, kept for it; newcomers queue behind", () => {
    let now = DEC_1;
    const gate = new DomainGate([], 1000, () => now, [parseWarmup("w.example=2,3,4/d from 2026-12-01")]);
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`);
    const untils = keys.map((key) => {
      const admission = gate.admit("w.example", key);
      return admission.go ? "now" : admission.until;
    });
    const day = (n: number) => DEC_1 + n * DAY;
    // 2 today, 3 tomorrow, 4 the day after, the last when the warm-up is over.
    assert.deepEqual(untils, ["now", "now", day(1), day(1), day(1), day(2), day(2), day(2), day(2), day(3)]);
    now = day(1);
    // A newcomer does not take the place kept for k2, k3 and k4: day 2 is full too, so it waits to the end.
    assert.deepEqual(gate.admit("w.example", "n1"), {
      go: false,
      until: day(3),
      why: "warmup",
      allowance: 3,
    });
    // A message back early is told its own time again.
    assert.deepEqual(gate.admit("w.example", "k5"), {
      go: false,
      until: day(2),
      why: "warmup",
      allowance: 3,
    });
    for (const key of ["k2", "k3", "k4"]) assert.deepEqual(gate.admit("w.example", key), { go: true });
    now = day(2) + HOUR;
    for (const key of ["k5", "k6", "k7", "k8"]) assert.deepEqual(gate.admit("w.example", key), { go: true });
    now = day(3);
    for (const key of ["k9", "n1", "n2"]) assert.deepEqual(gate.admit("w.example", key), { go: true });
  });

  test("a message back after the step it had a place in waits like a newcomer", () => {
    let now = DEC_1;
    const gate = new DomainGate([], 1000, () => now, [
      parseWarmup("w.example=1/d..1/d over 5d from 2026-12-01"),
    ]);
    assert.deepEqual(gate.admit("w.example", "a"), { go: true });
    assert.deepEqual(gate.admit("w.example", "late"), {
      go: false,
      until: DEC_1 + DAY,
      why: "warmup",
      allowance: 1,
    });
    now = DEC_1 + 2 * DAY;
    assert.deepEqual(gate.admit("w.example", "b"), { go: true });
    assert.deepEqual(gate.admit("w.example", "late"), {
      go: false,
      until: DEC_1 + 3 * DAY,
      why: "warmup",
      allowance: 1,
    });
  });

  test("before the start the first step's allowance holds, per step", () => {
    let now = DEC_1 - 3 * DAY + HOUR;
    const gate = new DomainGate([], 1000, () => now, [parseWarmup("w.example=1,10/d from 2026-12-01")]);
    assert.deepEqual(gate.admit("w.example", "a"), { go: true });
    // The next day before the start has room for one.
    assert.deepEqual(gate.admit("w.example", "b"), {
      go: false,
      until: DEC_1 - 2 * DAY,
      why: "warmup",
      allowance: 1,
    });
    now = DEC_1 - 2 * DAY;
    assert.deepEqual(gate.admit("w.example", "b"), { go: true });
  });

  test("`*` is the schedule of every domain without its own; each domain counts its own allowance", () => {
    const now = DEC_1;
    const gate = new DomainGate([], 1000, () => now, [
      parseWarmup("*=1/h..100/h over 10h from 2026-12-01"),
      parseWarmup("big.example=5/h..5/h over 10h from 2026-12-01"),
    ]);
    assert.deepEqual(gate.admit("a.example", "1"), { go: true });
    assert.equal(gate.admit("a.example", "2").go, false);
    assert.deepEqual(gate.admit("b.example", "3"), { go: true });
    for (let i = 0; i < 5; i++) assert.deepEqual(gate.admit("big.example", `b${i}`), { go: true });
    assert.deepEqual(gate.admit("big.example", "b5"), {
      go: false,
      until: DEC_1 + HOUR,
      why: "warmup",
      allowance: 5,
    });
  });

  test("with a rate as well, the stricter one holds mail back", () => {
    let now = DEC_1;
    // The warm-up (2 an hour) is stricter than the rate (600 an hour, one every 6 s).
    const warmupStricter = new DomainGate([parseDomainRate("s.example=600/h")], 1000, () => now, [
      parseWarmup("s.example=2/h..2/h over 5h from 2026-12-01"),
    ]);
    assert.deepEqual(warmupStricter.admit("s.example", "a"), { go: true });
    now += 6000;
    assert.deepEqual(warmupStricter.admit("s.example", "b"), { go: true });
    now += 6000;
    assert.deepEqual(warmupStricter.admit("s.example", "c"), {
      go: false,
      until: DEC_1 + HOUR,
      why: "warmup",
      allowance: 2,
    });

    now = DEC_1;
    // The rate (one a second) is stricter than the warm-up (1000 an hour): messages are spaced by it.
    const rateStricter = new DomainGate([parseDomainRate("s.example=60/m")], 1000, () => now, [
      parseWarmup("s.example=1000/h..1000/h over 5h from 2026-12-01"),
    ]);
    assert.deepEqual(rateStricter.admit("s.example", "a"), { go: true });
    assert.deepEqual(rateStricter.admit("s.example", "b"), { go: false, until: DEC_1 + 1000, why: "rate" });
    now = DEC_1 + 1000;
    assert.deepEqual(rateStricter.admit("s.example", "b"), { go: true });

    now = DEC_1;
    // Held back by the warm-up, a message takes no slot of the rate: the first message of the next
    // step goes at once.
    const both = new DomainGate([parseDomainRate("s.example=60/m")], 1000, () => now, [
      parseWarmup("s.example=1,5/m from 2026-12-01"),
    ]);
    assert.deepEqual(both.admit("s.example", "a"), { go: true });
    now = DEC_1 + 2000;
    for (const key of ["b", "c", "d"]) assert.equal(both.admit("s.example", key).go, false);
    now = DEC_1 + 60_000;
    assert.deepEqual(both.admit("s.example", "b"), { go: true });
    // Held back by the rate, a message uses none of the step's allowance of 5: b to f go, a second apart.
    assert.deepEqual(both.admit("s.example", "c"), { go: false, until: DEC_1 + 61_000, why: "rate" });
    now = DEC_1 + 61_000;
    assert.deepEqual(both.admit("s.example", "c"), { go: true });
    now = DEC_1 + 62_000;
    assert.deepEqual(both.admit("s.example", "d"), { go: true });
    now = DEC_1 + 63_000;
    assert.deepEqual(both.admit("s.example", "e"), { go: true });
    now = DEC_1 + 64_000;
    assert.deepEqual(both.admit("s.example", "f"), { go: true });
    now = DEC_1 + 65_000;
    assert.equal(both.admit("s.example", "g").go, false);
  });

  test("a back-off still comes first, and waiting for the warm-up is not counted against MAILROOM_MAX_ATTEMPTS", () => {
    const now = DEC_1;
    const gate = new DomainGate([], 1000, () => now, [parseWarmup("w.example=1/d from 2026-12-01")]);
    gate.slowDown("w.example");
    assert.deepEqual(gate.admit("w.example", "a"), { go: false, until: DEC_1 + 1000, why: "backoff" });
    assert.equal(countsTowardLimit(16130), false);
  });
});
