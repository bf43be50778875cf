/**
 * The rich rows' requests (JSON bodies, composed by MailComposer on the server): an HTML message with its
 * text alternative, and a text message with one 100 KB attachment whose bytes differ in every request.
 */
import { randomBytes } from "node:crypto";
import type { Credentials } from "./mailroom.js";
import { apiRequest, ENVELOPE, type HttpRequestSpec } from "./message.js";

/** About 1 KB of the HTML a transactional email carries: paragraphs, a link, a small table. */
export const HTML = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Your order has shipped</title></head>
<body style="font-family: Arial, sans-serif; color: #222;">
<p>Hello Jane,</p>
<p>Good news: your order <strong>#48213</strong> left our warehouse this morning and is on its way.
It should arrive within two to three working days.</p>
<table style="border-collapse: collapse;" cellpadding="4">
<tr><th align="left">Item</th><th align="right">Qty</th><th align="right">Price</th></tr>
<tr><td>Espresso cups, set of 4</td><td align="right">1</td><td align="right">&euro;24.00</td></tr>
<tr><td>Coffee beans, 1 kg</td><td align="right">2</td><td align="right">&euro;31.80</td></tr>
<tr><td><strong>Total</strong></td><td></td><td align="right"><strong>&euro;55.80</strong></td></tr>
</table>
<p>You can follow the parcel at any time:
<a href="https://shop.example.com/orders/48213/tracking">track your order</a>.</p>
<p>Questions? Just reply to this email and our team will get back to you.</p>
<p>Thank you for shopping with us,<br>The Example Shop team</p>
</body></html>
`;

/** The same message as plain text, as a sender writes it for the text/plain alternative. */
export const TEXT = `Hello Jane,

Good news: your order #48213 left our warehouse this morning and is on its way.
It should arrive within two to three working days.

Item                      Qty    Price
Espresso cups, set of 4     1   EUR 24.00
Coffee beans, 1 kg          2   EUR 31.80
Total                           EUR 55.80

You can follow the parcel at any time:
https://shop.example.com/orders/48213/tracking

Questions? Just reply to this email and our team will get back to you.

Thank you for shopping with us,
The Example Shop team
`;

const JSON_TYPE = "application/json";

/** Html and Text, the same for every request: the store keeps them per message, so repeats flatter nothing. */
export function htmlTextRequest(credentials: Credentials): HttpRequestSpec {
  return apiRequest(credentials, JSON_TYPE, JSON.stringify({ ...ENVELOPE, Html: HTML, Text: TEXT }));
}

/** The attachment row's file: 100 KB, as the plain row's body is 1 KB (1,024 bytes). */
export const ATTACHMENT_BYTES = 100 * 1024;

/**
 * The attachment's first bytes: a PDF's signature and a request counter, so that no two requests carry
 * the same file (the store keeps identical bytes once, which would flatter the row). A multiple of 3
 * bytes long, so that its base64 ends on a whole group and the rest of the file's base64 is made once.
 */
const HEAD_BYTES = 24;
const head = (n: number) => `%PDF-1.7\n%${String(n).padStart(HEAD_BYTES - 11, "0")}\n`;
const CONTENT_MARK = "@CONTENT@";

/**
 * Text and one attachment of `bytes`: a PDF's signature, then random bytes (as a PDF's compressed
 * streams are). Each call of the body makes a new request body, in which only the head is encoded anew.
 */
export function attachmentRequest(credentials: Credentials, bytes: number): HttpRequestSpec {
  const json = JSON.stringify({
    ...ENVELOPE,
    Text: TEXT,
    Attachments: [{ Filename: "invoice-48213.pdf", ContentType: "application/pdf", Content: CONTENT_MARK }],
  });
  const [before = "", after = ""] = json.split(CONTENT_MARK);
  const prefix = Buffer.from(before);
  const suffix = Buffer.from(randomBytes(bytes - HEAD_BYTES).toString("base64") + after);
  let sent = 0;
  return apiRequest(credentials, JSON_TYPE, () => {
    sent++;
    const encodedHead = Buffer.from(Buffer.from(head(sent)).toString("base64"));
    return Buffer.concat([prefix, encodedHead, suffix]);
  });
}
