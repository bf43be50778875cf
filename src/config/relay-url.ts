/**
 * The query options a relay URL (MAILROOM_SMTP_URL) may carry. Anything else is refused at start: an
 * option that was silently ignored (`?tls.ca=/path` once was) leaves the operator believing the relay
 * is set up in a way it is not.
 */
export interface RelayUrlOptions {
  /** ?name=: the name sent with EHLO. */
  name: string | undefined;
  /** ?allowInsecureAuth=true: send the credentials even over a connection without TLS. */
  allowInsecureAuth: boolean;
  /** ?tls.rejectUnauthorized=false, ?tls.servername=…, ?tls.minVersion=…: passed to tls.connect. */
  tls: {
    rejectUnauthorized?: boolean;
    servername?: string;
    minVersion?: string;
    maxVersion?: string;
    ciphers?: string;
  };
}

const TLS_TEXT = ["servername", "minVersion", "maxVersion", "ciphers"] as const;

/** Reads the URL's query options; throws an Error whose message says what to send instead. */
export function readRelayUrlOptions(url: URL): RelayUrlOptions {
  const options: RelayUrlOptions = { name: undefined, allowInsecureAuth: false, tls: {} };
  for (const [key, value] of url.searchParams) {
    if (key === "name") {
      if (!/^[A-Za-z0-9.[\]:-]+$/.test(value)) throw new Error(`?name= must be a host name, got "${value}"`);
      options.name = value;
    } else if (key === "allowInsecureAuth") {
      options.allowInsecureAuth = flag(key, value);
    } else if (key === "tls.rejectUnauthorized") {
      options.tls.rejectUnauthorized = flag(key, value);
    } else if (key.startsWith("tls.") && (TLS_TEXT as readonly string[]).includes(key.slice(4))) {
      options.tls[key.slice(4) as (typeof TLS_TEXT)[number]] = value;
    } else if (key === "tls.ca") {
      throw new Error(
        "?tls.ca= is not read: give the relay's CA certificate as a file in MAILROOM_SMTP_CA_FILE",
      );
    } else {
      throw new Error(
        `unknown option ?${key}=; known: name, allowInsecureAuth, tls.rejectUnauthorized, ${TLS_TEXT.map((k) => `tls.${k}`).join(", ")}`,
      );
    }
  }
  return options;
}

function flag(key: string, value: string): boolean {
  if (value === "true") return true;
  if (value === "false") return false;
  throw new Error(`?${key}= must be true or false, got "${value}"`);
}
