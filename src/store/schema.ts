import type { Generated } from "kysely";

/**
 * The tables as Kysely sees them. Times are milliseconds since the epoch (bigint), which compare
 * and index the same way on SQLite and PostgreSQL.
 */
export interface AccountsTable {
  sid: string;
  parent_sid: string | null;
  email_address: string;
  friendly_name: string;
  type: string;
  status: string;
  role: string;
  auth_token_hash: string;
  password_hash: string | null;
  date_created: number;
  date_updated: number;
}

export interface EmailMessagesTable {
  sid: string;
  account_sid: string;
  from_address: string;
  to_addresses: string;
  cc_addresses: string;
  bcc_addresses: string;
  subject: string;
  body: string;
  type: string;
  status: string;
  message_id: string;
  status_callback: string | null;
  error_code: number | null;
  error_message: string | null;
  num_attempts: Generated<number>;
  date_created: number;
  date_updated: number;
  date_sent: number;
  date_delivered: number | null;
}

/** One row per message still to be delivered; deleted when the message reaches a final status. */
export interface DeliveryQueueTable {
  message_sid: string;
  due_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
}

export interface EmailAttemptsTable {
  sid: string;
  message_sid: string;
  account_sid: string;
  attempt: number;
  date_started: number;
  date_finished: number;
  outcome: string;
  smtp_code: number | null;
  response: string | null;
  error_code: number | null;
  error_message: string | null;
  recipients: string | null;
}

/** The composed MIME of a message, built once (at the first attempt) and reused by every retry. */
export interface EmailMimeTable {
  message_sid: string;
  raw: string;
}

export interface Database {
  accounts: AccountsTable;
  email_messages: EmailMessagesTable;
  delivery_queue: DeliveryQueueTable;
  email_attempts: EmailAttemptsTable;
  email_mime: EmailMimeTable;
}
