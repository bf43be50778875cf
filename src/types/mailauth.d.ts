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
