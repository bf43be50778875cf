/** The results: a table and ratios on stdout, the same data as JSON in bench/results/latest.json. */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BenchConfig } from "./config.js";
import { type Machine, machineLine } from "./machine.js";
import { ATTACHMENT_BYTES, HTML } from "./message-rich.js";
import { RENDERED_SAMPLES, TEMPLATE_DATA } from "./message-template.js";
import type { Payload, Row } from "./row.js";
import { CEILING, POSTFIX_OPENDKIM, POSTFIX_RELAY } from "./scenario-smtp.js";

export interface Ratio {
  row: string;
  over: string;
  value: number;
}

export interface Target {
  what: string;
  row: string;
  measured: string;
  met: boolean;
}

export interface Report {
  date: string;
  command: string;
  machine: Machine;
  config: BenchConfig;
  sink: string;
  mailroomSettings: Record<string, string>;
  rows: Row[];
  ratios: Ratio[];
  targets: Target[];
}

/** The ratios and targets are about the plain load: the rich rows are shown, not compared. */
const isPlainMailroom = (row: Row) => row.payload === "plain" && !row.webhook && !row.dkim && !row.mx;

export function ratios(rows: Row[]): Ratio[] {
  const out: Ratio[] = [];
  for (const over of [POSTFIX_RELAY, CEILING]) {
    const base = rows.find((row) => row.name === over && row.status === "ok" && row.deliveredPerSec);
    if (!base?.deliveredPerSec) continue;
    for (const row of rows) {
      if (!isPlainMailroom(row) || row.status !== "ok" || row.deliveredPerSec === undefined) continue;
      out.push({ row: row.name, over, value: row.deliveredPerSec / base.deliveredPerSec });
    }
  }
  return out;
}

/** Issue 5's targets, as measured in this run (reported, never asserted). */
export function targets(rows: Row[], found: Ratio[]): Target[] {
  const out: Target[] = [];
  for (const ratio of found.filter((r) => r.over === POSTFIX_RELAY)) {
    out.push({
      what: "delivered/s ≥ 5× Postfix relay",
      row: ratio.row,
      measured: `${ratio.value.toFixed(2)}×`,
      met: ratio.value >= 5,
    });
  }
  for (const row of rows.filter((r) => isPlainMailroom(r) && r.status === "ok")) {
    const p99 = row.latency?.p99Ms;
    if (p99 !== undefined) {
      out.push({
        what: `HTTP p99 at ${row.latency?.offeredRate} req/s < 20 ms`,
        row: row.name,
        measured: `${p99.toFixed(1)} ms`,
        met: p99 < 20 && row.latency?.errors === 0 && row.latency?.non2xx === 0,
      });
    }
    if (row.peakRssMb !== undefined) {
      out.push({
        what: "peak RSS < 200 MB",
        row: row.name,
        measured: `${row.peakRssMb.toFixed(0)} MB`,
        met: row.peakRssMb < 200,
      });
    }
    if (row.backlog) {
      out.push({
        what: `accepted/s with ${row.backlog.queued} queued within 10% of empty`,
        row: row.name,
        measured: `${(row.backlog.ratio * 100).toFixed(0)}% of empty`,
        met: row.backlog.ratio >= 0.9,
      });
    }
  }
  // Issue 13: one webhook on every event costs the plain SQLite row at most 15% of its delivered/s.
  const hooked = rows.find((r) => r.webhook && r.status === "ok" && r.deliveredPerSec);
  const plain = rows.find(
    (r) => isPlainMailroom(r) && r.status === "ok" && r.name === hooked?.name.split(",")[0],
  );
  if (hooked?.deliveredPerSec && plain?.deliveredPerSec) {
    const ratio = hooked.deliveredPerSec / plain.deliveredPerSec;
    out.push({
      what: `delivered/s within 15% of ${plain.name} with a webhook on every event`,
      row: hooked.name,
      measured: `${(ratio * 100).toFixed(0)}% of it`,
      met: ratio >= 0.85 && hooked.webhooks?.events === hooked.webhooks?.expected,
    });
  }
  // Issue 15: DKIM signing (RSA-2048) costs the plain SQLite row at most 25% of its delivered/s.
  const signed = rows.find((r) => r.dkim && r.status === "ok" && r.deliveredPerSec);
  const unsigned = rows.find(
    (r) => isPlainMailroom(r) && r.status === "ok" && r.name === signed?.name.split(",")[0],
  );
  if (signed?.deliveredPerSec && unsigned?.deliveredPerSec) {
    const ratio = signed.deliveredPerSec / unsigned.deliveredPerSec;
    out.push({
      what: `delivered/s at least 75% of ${unsigned.name} with every message DKIM-signed`,
      row: signed.name,
      measured: `${(ratio * 100).toFixed(0)}% of it`,
      met: ratio >= 0.75,
    });
  }
  // Issue 15: with DKIM, at least 5× Postfix signing the same mail through OpenDKIM (a milter).
  const openDkim = rows.find((r) => r.name === POSTFIX_OPENDKIM && r.status === "ok" && r.deliveredPerSec);
  if (signed?.deliveredPerSec && openDkim?.deliveredPerSec) {
    const ratio = signed.deliveredPerSec / openDkim.deliveredPerSec;
    out.push({
      what: `delivered/s ≥ 5× ${POSTFIX_OPENDKIM} (every message DKIM-signed on both sides)`,
      row: signed.name,
      measured: `${ratio.toFixed(2)}×`,
      met: ratio >= 5 && signed.deliveryComplete === true && openDkim.deliveryComplete === true,
    });
  }
  // Issue 15: direct-to-MX across 1,000 domains within 20% of the plain SQLite row (one relay).
  const direct = rows.find((r) => r.mx && r.status === "ok" && r.deliveredPerSec);
  const relay = rows.find(
    (r) => isPlainMailroom(r) && r.status === "ok" && r.name === direct?.name.split(",")[0],
  );
  if (direct?.deliveredPerSec && relay?.deliveredPerSec) {
    const ratio = direct.deliveredPerSec / relay.deliveredPerSec;
    out.push({
      what: `delivered/s within 20% of ${relay.name} (one relay), direct to MX across ${direct.mx?.domains} domains`,
      row: direct.name,
      measured: `${(ratio * 100).toFixed(0)}% of it`,
      met: ratio >= 0.8 && direct.deliveryComplete === true,
    });
  }
  return out;
}

function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(header: string[], body: string[][]): string {
  const widths = header.map((cell, i) =>
    Math.max(cell.length, ...body.map((line) => (line[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}

function rowCells(row: Row): string[] {
  if (row.status !== "ok") return [row.name, row.status, "", "", "", ""];
  const incomplete = row.deliveryComplete === false ? " (incomplete)" : "";
  return [
    row.name,
    fmt(row.acceptedPerSec),
    `${fmt(row.deliveredPerSec)}${incomplete}`,
    fmt(row.latency?.p50Ms, 1),
    fmt(row.latency?.p99Ms, 1),
    fmt(row.peakRssMb),
  ];
}

function notes(row: Row): string[] {
  if (row.status !== "ok") return [`${row.name}: ${row.status} — ${row.reason ?? ""}`];
  const out: string[] = [];
  const parts: string[] = [];
  if (row.delivered !== undefined) {
    parts.push(`${fmt(row.delivered)} delivered in ${fmt(row.deliverySeconds, 1)} s`);
  }
  if (row.avgMessageBytes !== undefined) parts.push(`${fmt(row.avgMessageBytes)} bytes/message at the sink`);
  if (row.duplicates !== undefined) parts.push(`${row.duplicates} duplicate Message-IDs`);
  if (row.rssNote) parts.push(`memory: ${row.rssNote}`);
  out.push(`${row.name}: ${parts.join("; ")}`);
  if (row.http && (row.http.non2xx > 0 || row.http.errors > 0)) {
    out.push(
      `${row.name}: throughput run had ${row.http.non2xx} non-2xx and ${row.http.errors} errors ` +
        `(${row.http.timeouts} timeouts); status codes ${JSON.stringify(row.http.statusCodes)}`,
    );
  }
  if (row.latency) {
    const l = row.latency;
    out.push(
      `${row.name}: latency run offered ${l.offeredRate} req/s, completed ${fmt(l.achievedRate)} req/s, ` +
        `max ${fmt(l.maxMs, 1)} ms, ${l.non2xx} non-2xx, ${l.errors} errors, generator lag ≤ ${fmt(l.maxStartLagMs, 1)} ms`,
    );
  }
  if (row.webhooks) {
    const w = row.webhooks;
    out.push(
      `${row.name}: webhook received ${fmt(w.events)} of ${fmt(w.expected)} events (${fmt(w.posts)} POSTs) ` +
        `in ${fmt(w.seconds, 1)} s from the first submission: ${fmt(w.eventsPerSec)} events/s`,
    );
  }
  if (row.latencyNotRun) out.push(`${row.name}: no latency run (${row.latencyNotRun})`);
  if (row.backlog) {
    const b = row.backlog;
    out.push(
      `${row.name}: accepted/s ${fmt(b.emptyAcceptedPerSec)} with an empty queue, ${fmt(b.backlogAcceptedPerSec)} with ` +
        `${fmt(b.queued)} queued (${(b.ratio * 100).toFixed(0)}%; relay down)`,
    );
  }
  if (row.logs && (row.logs.warn > 0 || row.logs.error > 0)) {
    out.push(
      `${row.name}: server logged ${row.logs.warn} warnings and ${row.logs.error} errors, e.g. ` +
        row.logs.samples.map((s) => JSON.stringify(s)).join(", "),
    );
  }
  if (row.details) {
    out.push(
      `${row.name}: ${Object.entries(row.details)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
  }
  return out;
}

export function renderReport(report: Report): string {
  const c = report.config;
  const lines = [
    "",
    `Mailroom bench — ${report.date}`,
    `Machine: ${machineLine(report.machine)}`,
    `Command: ${report.command}`,
    `Load: ${fmt(c.messages)} messages (${fmt(c.messageBytes)}-byte body) over ${c.connections} concurrent ` +
      `connections/sessions after ${fmt(c.warmup)} warm-up; latency at ${c.latencyRate} req/s for ${c.latencySeconds} s`,
    `Sink: ${report.sink}, the same for every row`,
    `Durability: Postfix fsyncs each queue file before "250 Ok"; Mailroom answers 200 only after its commit.`,
  ];
  const batched = report.rows.find((row) => row.messagesPerRequest !== undefined);
  if (batched) {
    lines.push(
      `Batch row (not in the ratios or targets): the plain row's messages, ${batched.messagesPerRequest} to a ` +
        "JSON request to …/Email/Messages/Batch; accepted/s, delivered/s and CPU are per message, no latency run",
    );
  }
  const measured = (payload: Payload) => report.rows.some((row) => row.payload === payload);
  if (measured("template")) {
    lines.push(
      `Templated row (not in the ratios or targets): the plain row's form request with TemplateSid and ` +
        `TemplateData (${Object.keys(TEMPLATE_DATA).length} variables) instead of Subject and Body; the account ` +
        `template renders the same Subject and a ${fmt(c.messageBytes)}-byte Text, so the message at the sink ` +
        `is the plain row's size; ${RENDERED_SAMPLES} of its messages checked at the sink for the rendered text`,
    );
  }
  if (measured("idempotent")) {
    lines.push(
      "Idempotency-Key row (not in the ratios or targets): the plain row's request with a new key (a UUID) on " +
        "every request, so each is a send; every message counted at the sink, then one key sent twice must " +
        "be replayed (same SID, one message at the sink)",
    );
  }
  if (measured("html+text") || measured("attachment")) {
    lines.push(
      `Rich rows (not in the ratios or targets): JSON bodies with Html (${fmt(Buffer.byteLength(HTML))} bytes) ` +
        `and Text; or Text and a ${fmt(ATTACHMENT_BYTES)}-byte attachment whose bytes differ in every request ` +
        `(${fmt(c.attachmentMessages)} messages, no latency run)`,
    );
  }
  if (Object.keys(report.mailroomSettings).length > 0) {
    lines.push(`Mailroom settings from the environment: ${JSON.stringify(report.mailroomSettings)}`);
  }
  lines.push(
    "",
    table(["", "accepted/s", "delivered/s", "p50 ms", "p99 ms", "peak RSS MB"], report.rows.map(rowCells)),
    "",
  );
  if (report.ratios.length > 0) {
    lines.push("Ratios of delivered/s:");
    for (const ratio of report.ratios) {
      lines.push(`  ${ratio.row} ÷ ${ratio.over}: ${ratio.value.toFixed(2)}×`);
    }
  } else {
    lines.push("Ratios of delivered/s: n/a (needs a Mailroom row and the Postfix or ceiling row)");
  }
  if (report.targets.length > 0) {
    lines.push("", "Targets (issue 5):");
    for (const t of report.targets) {
      lines.push(`  [${t.met ? "met" : "MISSED"}] ${t.row}: ${t.what} — ${t.measured}`);
    }
  }
  lines.push("", "Notes:");
  for (const row of report.rows) for (const note of notes(row)) lines.push(`  - ${note}`);
  lines.push("");
  return lines.join("\n");
}

export async function writeReport(report: Report, file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
}
