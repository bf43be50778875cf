/** Where resources live on the wire (Restcomm's base path and API version). */
export const API_VERSION = "2012-04-24";
export const API_BASE = `/restcomm/${API_VERSION}`;

export function accountUri(sid: string): string {
  return `${API_BASE}/Accounts/${sid}.json`;
}

export function emailMessagesPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Email/Messages`;
}

export function webhooksPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Webhooks`;
}

export function eventsPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Events`;
}

export function notificationsPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Notifications`;
}

export function usageRecordsPath(accountSid: string): string {
  return `${API_BASE}/Accounts/${accountSid}/Usage/Records`;
}
