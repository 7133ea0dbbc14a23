#include "schema.hpp"

#include <iterator>
#include <stdexcept>
#include <string>

namespace notify::sqlite {

namespace {

// Version 1: notifications (user_id NULL for a broadcast), per-user read marks of broadcasts,
// the sequence, and one `histories` row per user and one for broadcasts (broadcast = 1,
// user_id ''): how many notifications it keeps (so the cap is checked without counting) and
// the highest seq retention removed from it. Triggers keep `histories` right; deleting a
// notification is retention's job alone, and also drops the read marks of a broadcast.
void create_version_1(Database& db) {
  db.exec(R"sql(
    CREATE TABLE sequence (
      id   INTEGER PRIMARY KEY CHECK (id = 1),
      head INTEGER NOT NULL
    );
    INSERT INTO sequence (id, head) VALUES (1, 0);

    CREATE TABLE notifications (
      seq         INTEGER PRIMARY KEY,
      user_id     TEXT,
      type        TEXT NOT NULL,
      title       TEXT NOT NULL,
      body        TEXT NOT NULL,
      actor_id    TEXT NOT NULL,
      entity_type TEXT NOT NULL,
      entity_id   TEXT NOT NULL,
      action_url  TEXT NOT NULL,
      image_url   TEXT NOT NULL,
      data        TEXT,
      created_at  TEXT NOT NULL,
      created_ms  INTEGER NOT NULL,
      read_at     TEXT
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, seq);

    CREATE TABLE broadcast_reads (
      seq     INTEGER NOT NULL,
      user_id TEXT NOT NULL,
      read_at TEXT NOT NULL,
      PRIMARY KEY (seq, user_id)
    ) WITHOUT ROWID;

    CREATE TABLE histories (
      broadcast    INTEGER NOT NULL,
      user_id      TEXT NOT NULL,
      kept         INTEGER NOT NULL,
      removed_upto INTEGER NOT NULL,
      PRIMARY KEY (broadcast, user_id)
    ) WITHOUT ROWID;

    CREATE TRIGGER notification_added AFTER INSERT ON notifications
    BEGIN
      INSERT INTO histories (broadcast, user_id, kept, removed_upto)
        VALUES (new.user_id IS NULL, coalesce(new.user_id, ''), 1, 0)
        ON CONFLICT (broadcast, user_id) DO UPDATE SET kept = kept + 1;
    END;

    CREATE TRIGGER notification_removed AFTER DELETE ON notifications
    BEGIN
      UPDATE histories SET kept = kept - 1, removed_upto = max(removed_upto, old.seq)
        WHERE broadcast = (old.user_id IS NULL) AND user_id = coalesce(old.user_id, '');
      DELETE FROM broadcast_reads WHERE old.user_id IS NULL AND seq = old.seq;
    END;
  )sql");
}

// Version 2: the seq of each user's latest read change (Resume::last_read).
void add_read_changes(Database& db) {
  db.exec(R"sql(
    CREATE TABLE read_changes (
      user_id TEXT PRIMARY KEY,
      seq     INTEGER NOT NULL
    ) WITHOUT ROWID;
  )sql");
}

// Version 3: idempotency keys (Store's contract): the id each key was given, per recipient
// (a user, or '' for the broadcasts), with the content_fingerprint() of its draft, until
// kept_until_ms.
void add_publish_keys(Database& db) {
  db.exec(R"sql(
    CREATE TABLE publish_keys (
      recipient     TEXT NOT NULL,
      key           TEXT NOT NULL,
      seq           INTEGER NOT NULL,
      created_at    TEXT NOT NULL,
      fingerprint   INTEGER NOT NULL,
      kept_until_ms INTEGER NOT NULL,
      PRIMARY KEY (recipient, key)
    ) WITHOUT ROWID;
    CREATE INDEX publish_keys_by_expiry ON publish_keys (kept_until_ms);
  )sql");
}

// Version 4: the sequence's base, the first id of a clock-seeded sequence: a cursor below it
// comes from another database (a file this one replaced) and is refused, so that its client
// is reset instead of keeping notifications this database never had. 0: not known (a
// database from before version 4, or ids 1, 2, 3...), nothing refused.
void add_sequence_base(Database& db) {
  db.exec("ALTER TABLE sequence ADD COLUMN base INTEGER NOT NULL DEFAULT 0");
}

// Version 5: an index of the unread notifications of users (broadcasts keep their read marks
// in broadcast_reads). A user's unread count, unread list and mark-all-read walked every
// notification the user keeps; now they walk the unread ones only (a user who keeps 200,000
// with 20 unread: 76 ms for the count, now well under one).
void add_unread_index(Database& db) {
  db.exec(R"sql(
    CREATE INDEX notifications_unread ON notifications (user_id, seq)
      WHERE read_at IS NULL AND user_id IS NOT NULL;
  )sql");
}

using Migration = void (*)(Database&);

// migrations[N] takes a database from version N to N + 1.
constexpr Migration migrations[] = {&create_version_1, &add_read_changes, &add_publish_keys,
                                    &add_sequence_base, &add_unread_index};
static_assert(std::size(migrations) == schema_version, "one migration per schema version");

}  // namespace

void check_is_ours(Database& db) {
  const int id = std::stoi(db.exec_text("PRAGMA application_id"));
  if (id != 0 && id != application_id)
    throw std::runtime_error("not a notify database (another application's, id " +
                             std::to_string(id) + ")");
  const int version = std::stoi(db.exec_text("PRAGMA user_version"));
  if (version < 0 || version > schema_version) {
    throw std::runtime_error("the database has schema version " + std::to_string(version) +
                             "; this notify knows versions up to " +
                             std::to_string(schema_version));
  }
  const auto tables = [&](const char* which) {
    return std::stoi(db.exec_text(
        std::string("SELECT count(*) FROM sqlite_schema WHERE type = 'table'") + which));
  };
  if (version == 0 && tables("") != 0)
    throw std::runtime_error("not a notify database (it has tables, and no notify schema)");
  if (version > 0 && tables(" AND name IN ('sequence', 'notifications', 'histories')") != 3)
    throw std::runtime_error("not a notify database (schema version " + std::to_string(version) +
                             " without notify's tables)");
}

void migrate(Database& db) {
  Transaction transaction(db, Transaction::Kind::write);
  check_is_ours(db);  // again, inside the transaction: another connection may have been first
  const int version = std::stoi(db.exec_text("PRAGMA user_version"));
  const bool marked = std::stoi(db.exec_text("PRAGMA application_id")) == application_id;
  if (version == schema_version && marked)
    return;
  for (int v = version; v < schema_version; ++v)
    migrations[v](db);
  db.exec("PRAGMA user_version = " + std::to_string(schema_version));
  db.exec("PRAGMA application_id = " + std::to_string(application_id));
  transaction.commit();
}

}  // namespace notify::sqlite
