/**
 * The templated row (issue 14): an account template made through the API before the run, and the plain
 * row's form request with `TemplateSid` and `TemplateData` in place of Subject and Body. The template
 * renders to the plain row's Subject and a Text of the plain row's body size, so the message delivered is
 * the plain row's size and shape (one text/plain part): the difference is the template's work.
 */

import type { Credentials } from "./mailroom.js";
import { apiRequest, bodyText, ENVELOPE, type HttpRequestSpec } from "./message.js";
import type { Sink } from "./sink.js";

/** Messages of the measured run kept whole and checked for the rendered text. */
export const RENDERED_SAMPLES = 10;

/** The variables every request sends (the same each time: a fixed body costs the harness nothing). */
export const TEMPLATE_DATA = { kind: "message", name: "Jane Doe", order: "#48213" };

const GREETING = "Hello {{name}},\nyour order {{order}} has shipped.\n";
/** The greeting as rendered with TEMPLATE_DATA: what the sink must find in every sample. */
export const RENDERED_GREETING = `Hello ${TEMPLATE_DATA.name},\nyour order ${TEMPLATE_DATA.order} has shipped.\n`;

/** The template's Text: the greeting, then the plain body's words up to `bodyBytes` once rendered. */
function templateText(bodyBytes: number): string {
  return GREETING + bodyText(Math.max(0, bodyBytes - RENDERED_GREETING.length));
}

function authorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.sid}:${credentials.authToken}`).toString("base64")}`;
}

/** Creates the account's template through the API; returns its SID (ET…). */
export async function createTemplate(
  baseUrl: string,
  credentials: Credentials,
  bodyBytes: number,
): Promise<string> {
  const response = await fetch(
    `${baseUrl}/restcomm/2012-04-24/Accounts/${credentials.sid}/Email/Templates.json`,
    {
      method: "POST",
      headers: {
        authorization: authorization(credentials),
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({
        Name: "bench-shipped",
        Subject: "Mailroom bench {{kind}}",
        Text: templateText(bodyBytes),
      }),
    },
  );
  if (!response.ok)
    throw new Error(`creating the template failed: ${response.status} ${await response.text()}`);
  const { sid } = (await response.json()) as { sid: string };
  return sid;
}

/** The templated row's request: form-encoded as the plain row's, TemplateData as JSON text. */
export function templateRequest(credentials: Credentials, templateSid: string): HttpRequestSpec {
  const body = new URLSearchParams({
    From: ENVELOPE.From,
    To: ENVELOPE.To,
    TemplateSid: templateSid,
    TemplateData: JSON.stringify(TEMPLATE_DATA),
  }).toString();
  return apiRequest(credentials, "application/x-www-form-urlencoded", body);
}

/**
 * Throws unless each sample the sink kept (asked for with `sink.reset(RENDERED_SAMPLES)`) carries the
 * rendered Subject and greeting and no unrendered `{{`. Returns how many were checked.
 */
export async function checkRenderedSamples(sink: Sink, delivered: number): Promise<number> {
  const wanted = Math.min(RENDERED_SAMPLES, delivered);
  const samples = await sink.samples(wanted, 10_000);
  if (samples.length < wanted)
    throw new Error(`the sink kept ${samples.length} of ${wanted} sample messages`);
  const greeting = RENDERED_GREETING.replaceAll("\n", "\r\n");
  for (const [index, raw] of samples.entries()) {
    const text = `\r\n${raw.toString("utf8")}`; // so the first header, too, follows a line break
    const problem = !text.includes(`\r\nSubject: ${ENVELOPE.Subject}\r\n`)
      ? "the rendered Subject"
      : !text.includes(`\r\n\r\n${greeting}`)
        ? "the rendered greeting at the start of the body"
        : text.includes("{{")
          ? "no unrendered {{"
          : undefined;
    if (problem) throw new Error(`sample ${index + 1} at the sink lacks ${problem}`);
  }
  return samples.length;
}
