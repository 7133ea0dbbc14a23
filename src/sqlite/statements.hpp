// The SQL of SqliteStore, one statement per constant, over the schema of schema.cpp. Kept
// apart from the store so that a test can ask SQLite how it runs them (EXPLAIN QUERY PLAN).
//
// Thread safety: constants; the sql_view_*() strings are built once, on first use.
#pragma once

#include "rows.hpp"

#include <string>

namespace notify::sqlite {

inline constexpr const char* sql_head = "SELECT head FROM sequence WHERE id = 1";
inline constexpr const char* sql_base = "SELECT base FROM sequence WHERE id = 1";
// ?1: the lowest id to give (SqliteStoreOptions::seed_from_clock), or 0. The first number
// of a new sequence is its base (the right side reads the row as it was).
// No row: the sequence is used up (head at 2^63 - 1).
inline constexpr const char* sql_take =
    "UPDATE sequence SET head = max(head + 1, ?1), base = iif(head = 0, ?1, base)"
    " WHERE id = 1 AND head < 9223372036854775807 RETURNING head";
inline constexpr const char* sql_insert =
    "INSERT INTO notifications (seq, user_id, type, title, body, actor_id, entity_type, "
    "entity_id, action_url, image_url, data, created_at, created_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

// Idempotency keys; ?1 the recipient (the user, '' for the broadcasts), ?2 the key.
inline constexpr const char* sql_key_find =
    "SELECT seq, created_at, fingerprint FROM publish_keys"
    " WHERE recipient = ?1 AND key = ?2 AND kept_until_ms > ?3";
inline constexpr const char* sql_key_keep =
    "INSERT INTO publish_keys (recipient, key, seq, created_at, fingerprint, kept_until_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (recipient, key) DO UPDATE SET"
    " seq = excluded.seq, created_at = excluded.created_at,"
    " fingerprint = excluded.fingerprint, kept_until_ms = excluded.kept_until_ms";
// A bounded number per append, so that no append pays for a day's worth of keys at once.
inline constexpr const char* sql_key_forget =
    "DELETE FROM publish_keys WHERE (recipient, key) IN"
    " (SELECT recipient, key FROM publish_keys WHERE kept_until_ms <= ?1 LIMIT 256)";

// Retention. The schema's triggers record every DELETE in `histories`.
inline constexpr const char* sql_kept =
    "SELECT kept FROM histories WHERE broadcast = ?1 AND user_id = ?2";
inline constexpr const char* sql_drop_oldest_user =
    "DELETE FROM notifications WHERE seq IN "
    "(SELECT seq FROM notifications WHERE user_id = ?1 ORDER BY seq LIMIT ?2)";
inline constexpr const char* sql_drop_oldest_broadcasts =
    "DELETE FROM notifications WHERE seq IN "
    "(SELECT seq FROM notifications WHERE user_id IS NULL ORDER BY seq LIMIT ?1)";
// The histories over their cap (?1 a user's, ?2 the broadcasts'): one row per user, read
// without counting a notification.
inline constexpr const char* sql_over_cap =
    "SELECT broadcast, user_id, kept FROM histories"
    " WHERE kept > CASE WHEN broadcast THEN ?2 ELSE ?1 END";
// Oldest first, up to the first notification young enough: seq order is creation order, so
// this walks only what it removes and needs no index on the age (one page less per append).
// Should the clock step back, a notification created "earlier" after it just lives longer.
inline constexpr const char* sql_age =
    "DELETE FROM notifications WHERE seq < coalesce("
    "(SELECT seq FROM notifications WHERE created_ms >= ?1 ORDER BY seq LIMIT 1), ?2)";
inline constexpr const char* sql_record_read =
    "INSERT INTO read_changes (user_id, seq) VALUES (?1, ?2)"
    " ON CONFLICT (user_id) DO UPDATE SET seq = excluded.seq";
inline constexpr const char* sql_last_read = "SELECT seq FROM read_changes WHERE user_id = ?1";
inline constexpr const char* sql_removed_upto =
    "SELECT coalesce(max(removed_upto), 0) FROM histories "
    "WHERE (broadcast = 0 AND user_id = ?1) OR (broadcast = 1 AND user_id = '')";

// A user's view: own notifications and broadcasts with seq in (?2, ?3], with the read state
// of ?1 (column 12), ?4 rows at most. Two index range scans merged by seq.
inline const char* const broadcast_read_at =
    "(SELECT r.read_at FROM broadcast_reads r "
    "WHERE r.seq = notifications.seq AND r.user_id = ?1)";

inline std::string view_sql(bool unread_only, bool newest_first) {
  const std::string columns(sqlite::notification_columns);
  std::string sql = "SELECT " + columns +
                    ", read_at FROM notifications"
                    " WHERE user_id = ?1 AND seq > ?2 AND seq <= ?3";
  if (unread_only)
    sql += " AND read_at IS NULL";
  sql += " UNION ALL SELECT " + columns + ", " + broadcast_read_at +
         " FROM notifications WHERE user_id IS NULL AND seq > ?2 AND seq <= ?3";
  if (unread_only)
    sql += std::string(" AND ") + broadcast_read_at + " IS NULL";
  sql += newest_first ? " ORDER BY 1 DESC LIMIT ?4" : " ORDER BY 1 ASC LIMIT ?4";
  return sql;
}

// Database::query() keeps a view of its SQL text: these live as long as the program.
inline const std::string& sql_view_newest() {
  static const std::string sql = view_sql(false, true);
  return sql;
}
inline const std::string& sql_view_unread_newest() {
  static const std::string sql = view_sql(true, true);
  return sql;
}
inline const std::string& sql_view_oldest() {
  static const std::string sql = view_sql(false, false);
  return sql;
}

inline constexpr const char* sql_unread_count =
    "SELECT (SELECT count(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL)"
    " + (SELECT count(*) FROM notifications n WHERE n.user_id IS NULL AND NOT EXISTS"
    "    (SELECT 1 FROM broadcast_reads r WHERE r.seq = n.seq AND r.user_id = ?1))";

inline constexpr const char* sql_find = "SELECT user_id, read_at FROM notifications WHERE seq = ?1";
inline constexpr const char* sql_read_one = "UPDATE notifications SET read_at = ?2 WHERE seq = ?1";
inline constexpr const char* sql_read_broadcast =
    "INSERT OR IGNORE INTO broadcast_reads (seq, user_id, read_at) VALUES (?1, ?2, ?3)";
inline constexpr const char* sql_unread_own =
    "SELECT seq FROM notifications WHERE user_id = ?1 AND read_at IS NULL ORDER BY seq";
inline constexpr const char* sql_read_own =
    "UPDATE notifications SET read_at = ?2 WHERE user_id = ?1 AND read_at IS NULL";
inline constexpr const char* sql_unread_broadcasts =
    "SELECT n.seq FROM notifications n WHERE n.user_id IS NULL AND NOT EXISTS"
    " (SELECT 1 FROM broadcast_reads r WHERE r.seq = n.seq AND r.user_id = ?1) ORDER BY n.seq";
inline constexpr const char* sql_read_broadcasts =
    "INSERT OR IGNORE INTO broadcast_reads (seq, user_id, read_at)"
    " SELECT seq, ?1, ?2 FROM notifications WHERE user_id IS NULL";

}  // namespace notify::sqlite
