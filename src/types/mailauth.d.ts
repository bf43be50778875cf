// mailauth 4.x ships no type declarations: the parts Mailroom uses (DKIM signing; tests verify).
declare module "mailauth/lib/dkim/sign.js" {
  export interface DkimSignatureData {
    signingDomain: string;
    selector: string;
    privateKey: string | Buffer;
    algorithm?: string;
    canonicalization?: string;
  }
  export function dkimSign(
    input: string | Buffer,
    options: {
      canonicalization?: string;
      signTime?: Date;
      /** Colon-separated header names. */
      headerList?: string;
      signatureData: DkimSignatureData[];
    },
  ): Promise<{
    signatures: string;
    errors: Array<{ err: Error; selector?: string; signingDomain?: string }>;
  }>;
}

declare module "mailauth/lib/dkim/verify.js" {
  export interface DkimResult {
    signingDomain: string;
    selector: string;
    algo: string;
    format: string;
    status: { result: string; comment?: string; header?: Record<string, string> };
    canonBodyLength?: number;
  }
  export function dkimVerify(
    input: string | Buffer,
    options?: { resolver?: (name: string, rrtype: string) => Promise<unknown> },
  ): Promise<{ headerFrom: string[]; results: DkimResult[] }>;
}

// mailauth's own building blocks of a DKIM signature (what its DkimSigner runs), used to sign with
// a parsed key in libuv's thread pool (src/delivery/dkim-sign.ts).
declare module "mailauth/lib/tools.js" {
  export interface ParsedHeader {
    key: string;
    casedKey: string;
    line: Buffer;
  }
  export interface SigningHeaderLines {
    keys: string;
    headers: ParsedHeader[];
  }
  export function parseHeaders(buf: Buffer): { parsed: ParsedHeader[]; original: Buffer };
  /** `fieldNames`: colon-separated header names. */
  export function getSigningHeaderLines(parsed: ParsedHeader[], fieldNames: string): SigningHeaderLines;
  export function formatSignatureHeaderLine(
    type: "DKIM",
    values: Record<string, string | number | undefined>,
    folded: boolean,
  ): string;
}

declare module "mailauth/lib/dkim/body/index.js" {
  export function dkimBody(
    canonicalization: string,
    hashAlgo: string,
    maxBodyLength: number | false,
  ): { update(chunk: Buffer): void; digest(encoding: "base64"): string };
}

declare module "mailauth/lib/dkim/header/index.js" {
  export function generateCanonicalizedHeader(
    type: "DKIM",
    signingHeaderLines: import("mailauth/lib/tools.js").SigningHeaderLines,
    options: {
      signingDomain: string;
      selector: string;
      algorithm: string;
      canonicalization: string;
      bodyHash: string;
      signTime?: Date;
    },
  ): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, string | number | undefined> };
}
