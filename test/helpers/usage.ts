import { utcDay } from "../../src/domain/usage-periods.js";

/**
 * Runs `check` with today's UTC day, again if the day changed while it ran: what the server calls
 * "today" is then the day the check expected, even at midnight.
 */
export async function onOneDay(check: (today: string) => Promise<void>): Promise<void> {
  for (;;) {
    const today = utcDay(Date.now());
    try {
      await check(today);
    } catch (error) {
      if (utcDay(Date.now()) !== today) continue;
      throw error;
    }
    return;
  }
}
