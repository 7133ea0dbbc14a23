// Checkpointer: copies a WAL database's write-ahead log back into the database file on a
// thread of its own, so that commits do not wait for the copy.
//
// SQLite's automatic checkpoint runs inside the commit that takes the log past its threshold
// (1,000 pages): every ≈ 250 appends of SqliteStore, one append waited for the copy and the
// fsyncs of the log and the file, which set the 99th percentile of a publish (≈ 5 ms, against
// 0.2 ms with no checkpoints at all). Here the owner's connection commits with no automatic
// checkpoint, its WAL hook calls committed(), and:
//   - each time the log has grown by `threshold_pages`, this thread runs a passive checkpoint
//     through a connection of its own: the copying and the fsyncs, while commits go on;
//   - once the log holds `restart_factor` × `threshold_pages` pages, this thread copies once
//     more, and the owner's next commit runs a passive checkpoint of what was committed since
//     (a few pages): the log is then copied in full and the commit after starts it over from
//     its beginning. Without that, under steady commits the log would never be copied in full
//     at a moment between two commits, and it would grow without end. Done by the committing
//     connection itself, that copy needs no lock handed over between threads, which a busy
//     owner would rarely let go of.
//   - should this thread fall behind (a slow disk, a thread starved of CPU) until the log
//     holds `catch_up_factor` × the restart size, the commit that finds it so copies the log
//     itself, as SQLite's automatic checkpoint would, after waiting for a copy of this thread
//     in progress. Commits then wait, but the log stays near that size whatever the pace of
//     the appends: without it, appends faster than the copies grow the log without end.
// A checkpoint of this thread that finds the owner's running is tried again at the next
// commit; one that fails otherwise, `retry_after` later at the soonest. A reader of another
// connection that holds an old snapshot (a sqlite3 shell in a transaction, a backup) does not
// make it fail, but the log can then be copied only up to that snapshot and cannot start
// over: it grows until the reader moves on. The owner's copies that stop short so are tried
// again only once the log has grown by another `threshold_pages` (each scans the log).
//
// Thread safety: committed() is called by the owner's connection after each commit, one
// commit at a time (the owner serializes its connection). The destructor stops and joins
// the thread (waiting for a checkpoint in progress) before it closes the connection; the
// owner must no longer call committed() by then.
#pragma once

#include "database.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace notify::sqlite {

class Checkpointer {
 public:
  static constexpr int restart_factor = 4;
  static constexpr int catch_up_factor = 2;
  static constexpr std::chrono::milliseconds retry_after{50};

  // Opens a second connection to the database at `path`, which the owner has put in WAL
  // mode (SqliteStore checks it before it makes a Checkpointer).
  Checkpointer(const std::string& path, int threshold_pages);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // The owner's connection committed and its log now holds `log_pages` pages.
  void committed(sqlite3* owner, int log_pages) noexcept;

 private:
  void run();
  // The owner's commit copies the log itself (the log reached catch_up_at_). Returns whether
  // it copied all of it.
  bool catch_up(sqlite3* owner) noexcept;
  // A passive checkpoint through the owner's connection; when it copied the whole log (it
  // returns true), the next commit starts the log over.
  bool copy_on_owner(sqlite3* owner) noexcept;
  // This thread's checkpoint: the log's size in pages; `rc` is SQLite's result.
  int copy(int& rc);

  const int threshold_pages_;
  const int restart_pages_;
  const int catch_up_pages_;
  // The owner's alone (committed() is called one commit at a time):
  int catch_up_at_;    // log size at which a commit copies the log itself
  bool busy_ = false;  // the owner's last copy found this thread's in progress
  Database db_;
  std::atomic<int> next_copy_at_;      // log size at which a commit asks for a checkpoint
  std::atomic<bool> rest_due_{false};  // the owner's next commit copies the rest

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable copied_;  // a copy of this thread ended
  bool due_ = false;
  bool copying_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: it starts once everything above exists
};

}  // namespace notify::sqlite
