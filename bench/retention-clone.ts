/**
 * A large SQLite store made fast, for the purge measurement of `bench/retention-steady.ts` (issue 16):
 * a million messages through the API take about 9 minutes; cloning a few thousand that were really
 * accepted and delivered takes a small part of that.
 *
 * Each clone is a copy of one real message with everything a delivered message has: its row (content,
 * texts), its composed MIME, its attempt records, its events, its tags, attachment references and
 * Notifications, with a fresh SID, a fresh Message-ID (in the row and in the MIME) and every time
 * shifted by the same amount. Clones are one millisecond apart, older than the messages they copy, and
 * written copy after copy, so the file's tables and indexes interleave as they do when messages
 * arrive over time (in steps of one copy of the templates rather than one group commit). Not cloned:
 * the per-day usage counters (Usage Records; the purge never reads them) and webhook jobs (none
 * for final messages in this bench). Only final messages without a queue row are copied.
 */
import type BetterSqlite3 from "better-sqlite3";

/** Per table: how each column of a clone is made from the template's (`t` the template row, `m` the map). */
const TABLES: Array<{ table: string; key: "sid" | "message_sid"; sidPrefix?: string; times: string[] }> = [
  {
    table: "email_messages",
    key: "sid",
    times: ["date_created", "date_updated", "date_sent", "date_delivered"],
  },
  { table: "email_mime", key: "message_sid", times: [] },
  { table: "email_attempts", key: "message_sid", sidPrefix: "EA", times: ["date_started", "date_finished"] },
  { table: "email_events", key: "message_sid", sidPrefix: "EV", times: ["date_created", "retry_at"] },
  { table: "email_tags", key: "message_sid", times: [] },
  { table: "attachment_refs", key: "message_sid", times: [] },
  { table: "notifications", key: "message_sid", sidPrefix: "NO", times: ["date_created"] },
];

/** A column's value in a clone: the new SID, the time moved, the Message-ID renamed, or a copy. */
function cloneColumn(
  table: string,
  column: string,
  key: string,
  sidPrefix: string | undefined,
  times: string[],
) {
  if (column === key) return "m.new_sid";
  if (column === "sid" && sidPrefix !== undefined) {
    // A row's SID starts with its time: the new time, then the template's random part.
    return `'${sidPrefix}' || printf('%012x', t.date_${sidPrefix === "EA" ? "started" : "created"} + m.shift) || substr(t.sid, 15)`;
  }
  if (times.includes(column)) return `t.${column} + m.shift`;
  if (table === "email_messages" && column === "message_id") return "replace(t.message_id, t.sid, m.new_sid)";
  if (table === "email_mime" && column === "raw") return "replace(t.raw, t.message_sid, m.new_sid)";
  return `t.${column}`;
}

export interface CloneReport {
  templates: number;
  clones: number;
  seconds: number;
}

/**
 * Adds `count` clones of the final messages already in the file at `connection` (a connection of its
 * own beside the running server, which must be idle meanwhile). One transaction per copy of the
 * templates; `progress` is told after each.
 */
export function cloneMessages(
  connection: BetterSqlite3.Database,
  count: number,
  progress: (done: number) => void = () => {},
): CloneReport {
  const started = performance.now();
  connection.pragma("synchronous = NORMAL"); // a fixture: a crash while making it means making it again
  connection.exec(`
    create temp table clone_templates (ord integer primary key, sid text not null unique, date_created integer not null);
    insert into clone_templates (sid, date_created)
      select sid, date_created from email_messages
      where status in ('sent', 'failed') and content_purged_at is null
        and sid not in (select message_sid from delivery_queue)
      order by sid;
    create temp table clone_map (old_sid text primary key, new_sid text not null, shift integer not null);`);
  const templates = (
    connection.prepare("select count(*) as n from temp.clone_templates").get() as { n: number }
  ).n;
  if (templates === 0) throw new Error("no final message to clone: accept and deliver some first");
  const oldest = (
    connection.prepare("select min(date_created) as t from temp.clone_templates").get() as { t: number }
  ).t;
  // Clone i (0-based, across all copies) was "created" at first + i ms, the last one just before the oldest template.
  const first = oldest - count - 1;
  const fill = connection.prepare(`
    insert into temp.clone_map (old_sid, new_sid, shift)
    select sid, 'EM' || printf('%012x', :base + ord - 1) || lower(hex(randomblob(10))), :base + ord - 1 - date_created
    from temp.clone_templates where ord <= :take`);
  const copies = TABLES.map(({ table, key, sidPrefix, times }) => {
    const columns = (connection.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name);
    const values = columns.map((column) => cloneColumn(table, column, key, sidPrefix, times));
    return connection.prepare(`
      insert into ${table} (${columns.map((c) => `"${c}"`).join(", ")})
      select ${values.join(", ")} from temp.clone_map m join ${table} t on t.${key} = m.old_sid
      order by m.new_sid`);
  });
  const copy = connection.transaction((base: number, take: number) => {
    connection.exec("delete from temp.clone_map");
    fill.run({ base, take });
    for (const statement of copies) statement.run();
  });
  let done = 0;
  while (done < count) {
    const take = Math.min(templates, count - done);
    copy(first + done, take);
    done += take;
    progress(done);
  }
  connection.exec("drop table temp.clone_map; drop table temp.clone_templates");
  return { templates, clones: done, seconds: (performance.now() - started) / 1000 };
}
