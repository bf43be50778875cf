import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

export interface Certificate {
  /** Where the PEM certificate is (what a CA file setting names, since it is self-signed). */
  certFile: string;
  key: Buffer;
  cert: Buffer;
}

/**
 * A self-signed certificate for `names` (the first is its CN; all are its subjectAltNames), valid for
 * two days, written as `{file}-key.pem` and `{file}-cert.pem` in `dir`. Made by openssl, which comes
 * with every Debian/Ubuntu: a TLS server in a test (relay, MX host, MTA-STS policy host) serves it,
 * and Mailroom is told to trust it.
 */
export async function makeCertificate(dir: string, file: string, names: string[]): Promise<Certificate> {
  const keyFile = join(dir, `${file}-key.pem`);
  const certFile = join(dir, `${file}-cert.pem`);
  await promisify(execFile)("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${names[0]}`,
    "-addext",
    `subjectAltName=${names.map((name) => `DNS:${name}`).join(",")}`,
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ]);
  return { certFile, key: await readFile(keyFile), cert: await readFile(certFile) };
}
