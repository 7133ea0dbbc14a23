// SqliteStore: a Store in an SQLite database file (component notify::sqlite), so
// notifications, read state and the sequence survive a restart. It keeps the Store contract
// exactly as MemoryStore does.
//
// The hub calls append() synchronously inside publish(), so a write must be cheap: the
// database runs in WAL mode with synchronous=NORMAL, where a commit appends to the
// write-ahead log without waiting for an fsync (those happen at checkpoints), every statement
// is prepared once, and the retention check on append is a lookup, not a count. An append is
// one short transaction, well under a millisecond (the unit test "sqlite store: appends per
// second" prints the rate). The price of synchronous=NORMAL: a power loss or OS crash (not a
// process crash) may lose the last commits. Checkpoints (copying the log back into the
// database file, and its fsync) run on a thread of the store and a second connection to the
// file (see checkpoint_pages), not inside an append.
//
// Retention: at most max_per_user notifications per user and max_broadcasts broadcasts, and,
// with max_age > 0, nothing older than max_age; applied to every user when the store opens
// (so lowered limits take effect then, not inside a publish), on append() and by prune(). The
// highest sequence number removed is kept per user (and for broadcasts), so resume() refuses a
// cursor older than the kept history, across restarts too.
//
// Schema: versioned by PRAGMA user_version and migrated on open (version 2 added the
// read_changes table behind Resume::last_read, version 5 an index of unread notifications); a file
// of a newer version is refused, so a rollback after an upgrade needs a copy of the file from
// before it. The file is marked as notify's with PRAGMA application_id ("ntfy"). The sequence ends
// at 2^63 - 1: past it, a publish or a read change throws std::runtime_error rather than give a
// number twice.
//
// Thread safety: every member function is safe to call concurrently: one connection, guarded
// by one mutex. Checkpoints run on a thread of the store with a connection of its own; the
// destructor waits for one in progress. A file has one SqliteStore at a time: a second one,
// in this process or another, is refused (an exclusive flock() on the file, held while the
// store is open), since each hub delivers live only what it appends itself.
#pragma once

#include <notify/sqlite_export.hpp>
#include <notify/store.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace notify {

struct SqliteStoreOptions {
  std::size_t max_per_user = 1000;    // notifications kept per user, oldest removed first
  std::size_t max_broadcasts = 1000;  // broadcast notifications kept
  std::chrono::seconds max_age{0};    // older ones are removed; 0 keeps them forever
  std::chrono::milliseconds busy_timeout{5000};  // waiting for a lock held by another connection
  // Each time the write-ahead log has grown by this many pages, a thread of the store copies
  // it back into the database file, so that appends do not wait for the copy and its fsyncs.
  // Every fourth time, the append after it copies the few pages committed meanwhile, so that
  // the log starts over: its file grows to about 4 × this × the page size (16 MiB). Should
  // that thread fall behind the appends (a slow disk, no CPU to spare), the append that takes
  // the log to 8 × this copies it itself, so the file never grows much beyond (32 MiB). 0:
  // SQLite's own automatic checkpoint instead, run inside the append that takes the log past
  // 1,000 pages.
  std::size_t checkpoint_pages = 1000;
  // No id falls below the current time in microseconds. A database that lost its last commits
  // (a power loss under synchronous=NORMAL), was restored from a backup or replaced by a new
  // file would otherwise issue again ids that clients hold as their cursors, and such a
  // client would resume past the notifications that took them. The first id of a new
  // database is its base: a cursor below it comes from a database this one replaced, and its
  // client is reset (Store::resume() answers nullopt) rather than left with notifications
  // this database does not have. false: ids 1, 2, 3...
  bool seed_from_clock = true;
  // How long an idempotency key is kept (Store's contract); above 0, at most
  // max_idempotency_window.
  std::chrono::milliseconds idempotency_window = std::chrono::hours(24);
};

class NOTIFY_SQLITE_EXPORT SqliteStore final : public Store {
 public:
  // The schema version this code writes (PRAGMA user_version).
  static constexpr int current_schema_version = 5;

  // Opens `path` (created when missing; ":memory:" is a private in-memory database) and
  // migrates it to the current schema. Throws std::invalid_argument for invalid options,
  // std::system_error (category "sqlite", with SQLite's message) when SQLite fails,
  // std::system_error (EBUSY) when another SqliteStore has the file open, and
  // std::runtime_error for a database with a schema newer than this code, one that is not
  // notify's (another application's), or a file this process may only read. Nothing is
  // written to a file it refuses.
  explicit SqliteStore(std::string path, SqliteStoreOptions options = {});
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Notification append(Notification draft) override;
  // One transaction for all of them: one commit, all stored or none.
  std::vector<Notification> append_all(std::vector<Notification> drafts) override;
  std::uint64_t head() override;
  Snapshot snapshot(std::string_view user, std::size_t limit) override;
  std::optional<Resume> resume(std::string_view user, std::uint64_t cursor, std::size_t limit,
                               std::size_t max_missed) override;
  std::vector<Notification> list(std::string_view user, bool unread_only,
                                 std::size_t limit) override;
  std::uint64_t unread_count(std::string_view user) override;
  ReadResult mark_read(std::string_view user, std::string_view id) override;
  ReadResult mark_all_read(std::string_view user) override;
  // One transaction for all of them: one commit, all made or none.
  std::vector<ReadResult> mark_many(const std::vector<MarkQuery>& marks) override;
  bool keeps_idempotency_keys() const noexcept override { return true; }

  // Applies the retention limits to every user now; returns how many notifications were
  // removed. (append() applies them only to the user it appends for, and the age limit.)
  // Its cost grows with the number of users and what it removes, not with what is kept.
  std::size_t prune();

  // The database's schema version (PRAGMA user_version).
  int schema_version();

  const std::string& path() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace notify
