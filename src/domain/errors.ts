/**
 * Every error a client can receive. Codes are stable: they are part of the API and each one has a
 * line in docs/errors.md. Numbering follows Restcomm's areas (10xxx accounts); Mailroom adds
 * 13xxx for email and 20xxx for request-level problems.
 */
export const ErrorCodes = {
  // 10xxx: authentication and accounts
  Unauthorized: { code: 10001, status: 401 },
  AccountNotActive: { code: 10002, status: 403 },
  Forbidden: { code: 10003, status: 403 },
  AccountNotFound: { code: 10004, status: 404 },
  EmailAddressTaken: { code: 10005, status: 409 },
  InvalidAccountStatus: { code: 10006, status: 400 },
  AccountClosed: { code: 10007, status: 409 },
  InvalidAccountField: { code: 10008, status: 400 },
  AccountFieldMissing: { code: 10009, status: 400 },
  SubAccountLimitReached: { code: 10010, status: 403 },
  PasswordTooLong: { code: 10011, status: 400 },
  TooManyFailedLogins: { code: 10012, status: 429 },
  AncestorNotActive: { code: 10013, status: 403 },
  RoleNotAllowed: { code: 10014, status: 403 },

  // 13xxx: email messages
  FromMissing: { code: 13001, status: 400 },
  ToMissing: { code: 13002, status: 400 },
  BodyMissing: { code: 13003, status: 400 },
  SubjectMissing: { code: 13004, status: 400 },
  InvalidFrom: { code: 13010, status: 400 },
  InvalidTo: { code: 13011, status: 400 },
  InvalidCc: { code: 13012, status: 400 },
  InvalidBcc: { code: 13013, status: 400 },
  SubjectTooLong: { code: 13014, status: 400 },
  HeaderInjection: { code: 13015, status: 400 },
  InvalidType: { code: 13016, status: 400 },
  TooManyRecipients: { code: 13017, status: 400 },
  InvalidBody: { code: 13018, status: 400 },
  InvalidStatusCallback: { code: 13019, status: 400 },
  MessageNotFound: { code: 13020, status: 404 },
  MimeNotAvailable: { code: 13021, status: 404 },
  ConflictingBody: { code: 13022, status: 400 },
  InvalidReplyTo: { code: 13023, status: 400 },
  InvalidHeader: { code: 13024, status: 400 },
  ReservedHeader: { code: 13025, status: 400 },
  InvalidTag: { code: 13026, status: 400 },
  InvalidAttachment: { code: 13027, status: 400 },
  AttachmentTypeRefused: { code: 13028, status: 400 },
  MessageTooLarge: { code: 13029, status: 413 },
  AttachmentNotFound: { code: 13030, status: 404 },
  InvalidCharacter: { code: 13031, status: 400 },

  // 140xx–141xx: webhooks, events, deliveries and replays (src/http/routes/webhooks.ts, events.ts)
  WebhookNotFound: { code: 14001, status: 404 },
  WebhookUrlMissing: { code: 14002, status: 400 },
  InvalidEventType: { code: 14003, status: 400 },
  InvalidWebhookField: { code: 14004, status: 400 },
  WebhookLimitReached: { code: 14005, status: 403 },
  EventNotFound: { code: 14006, status: 404 },
  WebhookDeliveryNotFound: { code: 14010, status: 404 },
  InvalidReplayRange: { code: 14011, status: 400 },
  ReplayTooLarge: { code: 14012, status: 400 },
  WebhookNotEnabled: { code: 14013, status: 409 },

  // 142xx–143xx: Restcomm Notifications and Usage Records
  NotificationNotFound: { code: 14200, status: 404 },
  InvalidNotificationFilter: { code: 14201, status: 400 },
  InvalidUsageDate: { code: 14210, status: 400 },
  UnknownUsageCategory: { code: 14211, status: 400 },
  UsageDatesReversed: { code: 14212, status: 400 },

  // 144xx: webhook and callback URLs (src/webhooks/address-guard.ts)
  WebhookUrlInvalid: { code: 14400, status: 400 },
  WebhookUrlCredentials: { code: 14401, status: 400 },
  WebhookAddressRefused: { code: 14402, status: 400 },
  WebhookHostNotFound: { code: 14403, status: 400 },

  // 150xx: Idempotency-Key and batch sends (src/http/idempotency.ts, src/http/routes/email-batch.ts)
  InvalidIdempotencyKey: { code: 15001, status: 400 },
  IdempotencyKeyReused: { code: 15002, status: 409 },
  IdempotencyKeyInFlight: { code: 15003, status: 409 },
  InvalidBatch: { code: 15010, status: 400 },
  BatchEmpty: { code: 15011, status: 400 },
  BatchTooLarge: { code: 15012, status: 400 },
  BatchNotJson: { code: 15013, status: 415 },
  BatchItemNotObject: { code: 15014, status: 400 },

  // 151xx (15100–15149): email templates (src/services/templates.ts, src/templates/)
  TemplateNotFound: { code: 15100, status: 404 },
  TemplateFieldMissing: { code: 15101, status: 400 },
  InvalidTemplateField: { code: 15102, status: 400 },
  TemplateNameTaken: { code: 15103, status: 409 },
  TemplateSyntaxError: { code: 15104, status: 400 },
  TemplateReadOnly: { code: 15105, status: 403 },
  TemplateLimitReached: { code: 15106, status: 403 },
  TemplateSendConflict: { code: 15110, status: 400 },
  InvalidTemplateParameter: { code: 15111, status: 400 },
  TemplateVariableMissing: { code: 15112, status: 400 },
  TemplateRenderFailed: { code: 15113, status: 400 },

  // 152xx: scheduled send, cancel and reschedule (SendAt; POST …/Email/Messages/{Sid})
  InvalidSendAt: { code: 15200, status: 400 },
  SendAtInPast: { code: 15201, status: 400 },
  SendAtTooFar: { code: 15202, status: 400 },
  InvalidMessageUpdate: { code: 15210, status: 400 },
  MessageBeingSent: { code: 15220, status: 409 },
  MessageFinal: { code: 15221, status: 409 },
  MessageNotScheduled: { code: 15222, status: 409 },

  // 160xx: sending domains (src/domains/, src/http/routes/domains.ts)
  DomainNameMissing: { code: 16001, status: 400 },
  InvalidDomainName: { code: 16002, status: 400 },
  DomainNotFound: { code: 16003, status: 404 },
  DomainTaken: { code: 16004, status: 409 },
  DomainLimitReached: { code: 16005, status: 403 },
  InvalidDkimAlgorithms: { code: 16006, status: 400 },
  DkimKeyNotFound: { code: 16007, status: 404 },
  DkimKeyInUse: { code: 16008, status: 409 },
  RotationPending: { code: 16009, status: 409 },
  UnverifiedFromDomain: { code: 16010, status: 400 },

  // 170xx: retention, purge and erasure (src/lifecycle/, issue 16)
  ContentPurged: { code: 17001, status: 410 },
  InvalidRetention: { code: 17002, status: 400 },
  RetentionAboveParent: { code: 17003, status: 400 },
  RetentionNotAllowed: { code: 17004, status: 403 },
  ErasureAddressMissing: { code: 17010, status: 400 },
  InvalidErasureAddress: { code: 17011, status: 400 },

  // 20xxx: the request itself
  MalformedBody: { code: 20001, status: 400 },
  PayloadTooLarge: { code: 20002, status: 413 },
  UnsupportedMediaType: { code: 20003, status: 415 },
  RouteNotFound: { code: 20004, status: 404 },
  InvalidPaging: { code: 20006, status: 400 },
  PageSizeTooLarge: { code: 20007, status: 400 },
  InvalidFilter: { code: 20008, status: 400 },
  UnknownParameter: { code: 20009, status: 400 },
  InvalidParameter: { code: 20010, status: 400 },
  InvalidEncoding: { code: 20011, status: 400 },
  DuplicateKey: { code: 20012, status: 400 },
  ServerBusy: { code: 20020, status: 503 },
  ShuttingDown: { code: 20021, status: 503 },
  MetricsTokenMissing: { code: 20030, status: 401 },
  MetricsTokenWrong: { code: 20031, status: 401 },
  InternalError: { code: 20500, status: 500 },
  StoreUnavailable: { code: 20503, status: 503 },
  StoreFull: { code: 20504, status: 507 },
  QueryTimeout: { code: 20505, status: 503 },
} as const;

export type ErrorKind = keyof typeof ErrorCodes;

/**
 * Codes the delivery engine writes to a message's and an attempt's `error_code` (13100–13199). They
 * are never HTTP errors: the message resource carries them, with an `error_message` that quotes the
 * relay's reply. Each one has a line in docs/delivery.md.
 */
export const DeliveryErrorCodes = {
  /** The relay refused the message for good (5xx) for every recipient. Final: `failed`. */
  MessageRejected: 13101,
  /** The relay refused some recipients for good; the others got the message. Final: `sent`. */
  RecipientsRejected: 13102,
  /** The relay answered with a temporary failure (4xx). The message is retried. */
  MessageDeferred: 13103,
  /** The relay could not be reached, or the connection failed or timed out. The message is retried. */
  RelayUnreachable: 13104,
  /** TLS or login with the relay failed: MAILROOM_SMTP_URL needs fixing. The message is retried. */
  RelaySetupFailed: 13105,
  /** Temporary failures until MAILROOM_MAX_ATTEMPTS attempts were used up. Final. */
  AttemptsExhausted: 13106,
  /** Temporary failures until the message was older than MAILROOM_MAX_AGE_MS. Final. */
  MessageExpired: 13107,
  /** Mailroom itself failed while delivering (logged). The message is retried. */
  DeliveryError: 13108,
  /** The message is larger than the relay's SIZE limit, so it was not sent. Final: `failed`. */
  MessageTooLarge: 13109,
  /**
   * MAILROOM_SMTP_URL has credentials, but the connection to the relay has no TLS (the relay offered
   * no STARTTLS): Mailroom refused to send them in clear text. The message is retried.
   */
  InsecureAuthRefused: 13110,
  // 161xx: direct-to-MX delivery (MAILROOM_DELIVERY_MODE=mx, src/delivery/mx/)
  /** The recipient domain does not exist (NXDOMAIN). Final for its recipients. */
  MxDomainNotFound: 16120,
  /** The recipient domain publishes the null MX "." (RFC 7505): it accepts no mail. Final. */
  MxNullMx: 16121,
  /** The MX (or address) lookup failed for now (SERVFAIL, timeout). Retried; not counted. */
  MxDnsTemporary: 16122,
  /** No MX host of the domain could be reached or greeted us with a refusal. Retried; not counted. */
  MxUnreachable: 16123,
  /** The domain requires TLS and no MX host offered STARTTLS with a valid certificate. Retried; not counted. */
  MxTlsRequired: 16124,
  /** The domain's MX hosts have no address at all. Final. */
  MxNoAddress: 16125,
  /** Over the domain's MAILROOM_DOMAIN_RATES: the message waits in the queue. Not counted, never final. */
  MxDomainRate: 16126,
  /** The domain said "slow down" (421, 451 4.7.x): all its mail waits for a while. Not counted. */
  MxDomainBackoff: 16127,
  /** Over the domain's warm-up allowance (MAILROOM_DOMAIN_WARMUP): waits for the next step. Not counted. */
  MxDomainWarmup: 16130,
} as const;

export type DeliveryErrorCode = (typeof DeliveryErrorCodes)[keyof typeof DeliveryErrorCodes];

/**
 * Codes the webhook sender writes (14420–14499): why one delivery attempt failed (a Deliveries row's
 * `error` starts with it) and the Notifications about a webhook or callback (`error_code`). Never HTTP
 * errors. Each one has a line in docs/errors.md.
 */
export const WebhookErrorCodes = {
  /** The receiver answered with a status other than 2xx or 3xx. Retried. */
  ReceiverError: 14420,
  /** The receiver answered with a redirect (3xx); redirects are not followed. Retried. */
  ReceiverRedirected: 14421,
  /** No complete answer within MAILROOM_WEBHOOK_TIMEOUT_MS. Retried. */
  ReceiverTimeout: 14422,
  /** The connection could not be made or broke (refused, reset, TLS). Retried. */
  ReceiverUnreachable: 14423,
  /** The host resolved to an address the guard refuses (MAILROOM_WEBHOOK_ALLOW_PRIVATE is off). Retried. */
  ReceiverAddressRefused: 14424,
  /** The host name does not resolve. Retried. */
  ReceiverHostNotFound: 14425,
  /** Notification (log 1): a webhook that was succeeding failed. */
  WebhookFailing: 14430,
  /** Notification (log 0): a webhook failing for MAILROOM_WEBHOOK_DISABLE_AFTER_MS was disabled. */
  WebhookDisabled: 14431,
  /** Notification (log 0): one event (or StatusCallback) was given up after the last retry. */
  DeliveryGivenUp: 14432,
} as const;

/**
 * Codes of the domain re-check (16100–16119): Notifications about a sending domain. Never HTTP
 * errors. Each one has a line in docs/errors.md.
 */
export const DomainCheckCodes = {
  /** Notification (log 0): a verified domain's DKIM record is gone or changed; it is `failed`. */
  DomainRecordsLost: 16100,
} as const;

export type WebhookErrorCode = (typeof WebhookErrorCodes)[keyof typeof WebhookErrorCodes];

/** Codes of the Notifications retention and erasure write (17020–17099). Never HTTP errors; each has a line in docs/errors.md. */
export const LifecycleNotificationCodes = {
  /** Notification (log 1): an address was erased from the account's messages (POST …/Email/Erasures). */
  AddressErased: 17020,
} as const;

/** An error that is meant for the API client: it carries its HTTP status and stable code. */
export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly code: number;
  readonly status: number;

  constructor(kind: ErrorKind, message: string) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.code = ErrorCodes[kind].code;
    this.status = ErrorCodes[kind].status;
  }
}

/** Where an error code is explained: the same path shape as Restcomm's `more_info`, served by Mailroom. */
export function moreInfoPath(code: number): string {
  return `/restcomm/errors/${code}.html`;
}

/** What an error code is called and, for API errors, its HTTP status (delivery codes have none). */
export interface ErrorCodeInfo {
  name: string;
  status: number | null;
}

const infoByCode = new Map<number, ErrorCodeInfo>([
  ...(Object.keys(ErrorCodes) as ErrorKind[]).map(
    (kind) => [ErrorCodes[kind].code, { name: kind, status: ErrorCodes[kind].status }] as const,
  ),
  ...Object.entries(DeliveryErrorCodes).map(([name, code]) => [code, { name, status: null }] as const),
  ...Object.entries(WebhookErrorCodes).map(([name, code]) => [code, { name, status: null }] as const),
  ...Object.entries(DomainCheckCodes).map(([name, code]) => [code, { name, status: null }] as const),

  ...Object.entries(LifecycleNotificationCodes).map(
    ([name, code]) => [code, { name, status: null }] as const,
  ),
]);

export function describeErrorCode(code: number): ErrorCodeInfo | undefined {
  return infoByCode.get(code);
}
