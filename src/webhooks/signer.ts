import { Webhook } from "standardwebhooks";

/** The three headers of the Standard Webhooks specification. */
export interface SignatureHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/**
 * Signs a webhook body with the `standardwebhooks` package: HMAC-SHA256 over `id.timestamp.body`
 * with the webhook's secret (`whsec_` + base64). The timestamp is the attempt's, in seconds, so a
 * retry is signed anew (receivers refuse timestamps more than five minutes off); the id is the
 * event SID, the same on every attempt and replay.
 */
export function signatureHeaders(secret: string, id: string, body: string, at: Date): SignatureHeaders {
  const signature = new Webhook(secret).sign(id, at, body);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": signature,
  };
}
