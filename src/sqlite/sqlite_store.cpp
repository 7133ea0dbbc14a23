#include <notify/sqlite_store.hpp>

#include "checkpointer.hpp"
#include "database.hpp"
#include "rows.hpp"
#include "schema.hpp"
#include "statements.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace notify {

using namespace sqlite;  // Database, Transaction and the statements

namespace {

static_assert(SqliteStore::current_schema_version == sqlite::schema_version);

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

// Sequence numbers and limits as SQLite integers; larger values mean "no bound".
std::int64_t to_db(std::uint64_t value) {
  return value > static_cast<std::uint64_t>(int64_max) ? int64_max
                                                       : static_cast<std::int64_t>(value);
}

struct Now {
  std::string text;     // ISO 8601, what clients see
  std::int64_t ms = 0;  // since the epoch, what max_age compares
};

Now now() {
  const auto t = std::chrono::system_clock::now();
  return {format_timestamp(t),
          std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()};
}

// Adds "notify::SqliteStore '<path>': " to an error from opening or migrating.
[[noreturn]] void rethrow_opening(const std::string& path) {
  const std::string prefix = "notify::SqliteStore '" + path + "': ";
  try {
    throw;
  } catch (const std::system_error& e) {
    // what() is "<what_arg>: <code message>", and the new error appends the latter again.
    std::string what = e.what();
    const std::string suffix = ": " + e.code().message();
    if (what.size() >= suffix.size() &&
        what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0)
      what.resize(what.size() - suffix.size());
    throw std::system_error(e.code(), prefix + what);
  } catch (const std::exception& e) {
    throw std::runtime_error(prefix + e.what());
  }
}

}  // namespace

// --- Impl ----------------------------------------------------------------------------------

class SqliteStore::Impl {
 public:
  Impl(std::string path, SqliteStoreOptions options)
      : path_(std::move(path)), options_(options), owner_(own(path_)), db_(open(path_, options_)) {
    // Limits lowered since the file was last open apply now, not inside the next publish
    // (a user with 200,000 notifications over the new cap: 0.6 s under the store's mutex).
    try {
      Transaction transaction(*db_, Transaction::Kind::write);
      apply_retention(now().ms);
      transaction.commit();
    } catch (...) {
      rethrow_opening(path_);
    }
    // An in-memory database has no log to copy.
    if (options_.checkpoint_pages == 0 || db_->exec_text("PRAGMA journal_mode") != "wal")
      return;
    try {
      checkpointer_ = std::make_unique<sqlite::Checkpointer>(
          path_, static_cast<int>(options_.checkpoint_pages));
    } catch (...) {
      rethrow_opening(path_);
    }
    // Replaces SQLite's automatic checkpoint, which is a WAL hook too.
    sqlite3_wal_hook(db_->handle(), &Impl::on_commit, this);
  }

  ~Impl() {
    if (checkpointer_)
      sqlite3_wal_hook(db_->handle(), nullptr, nullptr);
  }

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::mutex mutex;

  const std::string& path() const noexcept { return path_; }
  const SqliteStoreOptions& options() const noexcept { return options_; }
  Database& db() noexcept { return *db_; }

  std::uint64_t head() {
    auto q = db_->query(sql_head);
    if (!q->step())
      throw std::runtime_error("notify::SqliteStore: the sequence row is missing");
    return static_cast<std::uint64_t>(q->int64(0));
  }

  // The first id of a clock-seeded sequence, 0 when not known (see schema.cpp, version 4).
  std::uint64_t base() {
    auto q = db_->query(sql_base);
    return q->step() ? static_cast<std::uint64_t>(q->int64(0)) : 0;
  }

  std::uint64_t take() {
    auto q = db_->query(sql_take);
    q->bind(1, options_.seed_from_clock ? to_db(sequence_floor_now()) : 0);
    if (!q->step())
      throw std::runtime_error(
          "notify::SqliteStore: the sequence is used up (its last number was given) or its "
          "row is missing");
    return static_cast<std::uint64_t>(q->int64(0));
  }

  std::vector<Notification> view(const std::string& sql, std::string_view user, std::uint64_t after,
                                 std::uint64_t upto, std::uint64_t limit) {
    std::vector<Notification> out;
    auto q = db_->query(sql);
    q->bind(1, user);
    q->bind(2, to_db(after));
    q->bind(3, to_db(upto));
    q->bind(4, to_db(limit));
    while (q->step())
      out.push_back(sqlite::read_notification(*q));
    return out;
  }

  std::uint64_t unread(std::string_view user) {
    auto q = db_->query(sql_unread_count);
    q->bind(1, user);
    q->step();
    return static_cast<std::uint64_t>(q->int64(0));
  }

  // Takes the next position for a read change of `user` and keeps it as the user's
  // Resume::last_read.
  std::uint64_t record_read(std::string_view user) {
    const auto seq = take();
    auto q = db_->query(sql_record_read);
    q->bind(1, user);
    q->bind(2, to_db(seq));
    q.run();
    return seq;
  }

  std::uint64_t last_read(std::string_view user) {
    auto q = db_->query(sql_last_read);
    q->bind(1, user);
    return q->step() ? static_cast<std::uint64_t>(q->int64(0)) : 0;
  }

  std::uint64_t removed_upto(std::string_view user) {
    auto q = db_->query(sql_removed_upto);
    q->bind(1, user);
    q->step();
    return static_cast<std::uint64_t>(q->int64(0));
  }

  // mark_read() within the caller's write transaction.
  ReadResult mark_one(std::string_view user, std::string_view id, const std::string& at) {
    ReadResult result;
    const auto seq = parse_sequence(id);
    if (seq && *seq <= static_cast<std::uint64_t>(int64_max)) {
      bool found = false, broadcast = false, unread = false;
      {
        auto find = db().query(sql_find);
        find->bind(1, to_db(*seq));
        if (find->step()) {
          broadcast = find->is_null(0);
          found = broadcast || find->text(0) == user;
          unread = find->is_null(1);
        }
      }
      if (found && broadcast) {
        auto mark = db().query(sql_read_broadcast);
        mark->bind(1, to_db(*seq));
        mark->bind(2, user);
        mark->bind(3, at);
        mark.run();
        if (db().changes() == 1)
          result.ids.push_back(std::to_string(*seq));
      } else if (found && unread) {
        auto mark = db().query(sql_read_one);
        mark->bind(1, to_db(*seq));
        mark->bind(2, at);
        mark.run();
        result.ids.push_back(std::to_string(*seq));
      }
    }
    result.seq = result.ids.empty() ? head() : record_read(user);
    result.unread_count = unread(user);
    return result;
  }

  // mark_all_read() within the caller's write transaction.
  ReadResult mark_all(std::string_view user, const std::string& at) {
    ReadResult result;
    // Ids in the order MemoryStore gives them: the user's own, then broadcasts, oldest first.
    for (const auto seq : seqs(sql_unread_own, user))
      result.ids.push_back(std::to_string(seq));
    for (const auto seq : seqs(sql_unread_broadcasts, user))
      result.ids.push_back(std::to_string(seq));
    if (!result.ids.empty()) {
      for (const char* sql : {sql_read_own, sql_read_broadcasts}) {
        auto mark = db().query(sql);
        mark->bind(1, user);
        mark->bind(2, at);
        mark.run();
      }
    }
    result.seq = result.ids.empty() ? head() : record_read(user);
    result.unread_count = unread(user);
    return result;
  }

  std::vector<std::int64_t> seqs(const char* sql, std::string_view user) {
    std::vector<std::int64_t> out;
    auto q = db_->query(sql);
    q->bind(1, user);
    while (q->step())
      out.push_back(q->int64(0));
    return out;
  }

  // Inside a write transaction: gives `draft` the next id and the time, stores it and keeps
  // its user's (or the broadcasts') history within the limit.
  // Stores `draft`, or makes it the replay of the publish its idempotency key was given to.
  void insert(Notification& draft, const std::string& created_at, std::int64_t created_ms) {
    draft.read_at.clear();
    if (draft.broadcast)
      draft.user_id.clear();
    draft.replayed = false;
    draft.replay_differs = false;
    const bool keyed = !draft.idempotency_key.empty();
    // Stored as SQLite's signed integer, bit for bit.
    const auto fingerprint = keyed ? static_cast<std::int64_t>(content_fingerprint(draft)) : 0;
    if (keyed && take_replay(draft, fingerprint, created_ms))
      return;
    const auto seq = take();
    draft.id = std::to_string(seq);
    draft.created_at = created_at;
    {
      auto q = db_->query(sql_insert);
      sqlite::bind_notification(*q, to_db(seq), draft, created_ms);
      q.run();
    }
    if (keyed) {
      auto q = db_->query(sql_key_keep);
      q->bind(1, draft.user_id);
      q->bind(2, draft.idempotency_key);
      q->bind(3, to_db(seq));
      q->bind(4, draft.created_at);
      q->bind(5, fingerprint);
      q->bind(6, created_ms + static_cast<std::int64_t>(options_.idempotency_window.count()));
      q.run();
    }
    cap_history(draft, draft.broadcast ? options_.max_broadcasts : options_.max_per_user);
  }

  // Whether the draft's key is held for its recipient; then the draft gets the first
  // publish's id and time.
  bool take_replay(Notification& draft, std::int64_t fingerprint, std::int64_t now_ms) {
    auto q = db_->query(sql_key_find);
    q->bind(1, draft.user_id);
    q->bind(2, draft.idempotency_key);
    q->bind(3, now_ms);
    if (!q->step())
      return false;
    draft.id = std::to_string(q->int64(0));
    draft.created_at = q->text(1);
    draft.replayed = true;
    draft.replay_differs = q->int64(2) != fingerprint;
    return true;
  }

  void forget_expired_keys(std::int64_t now_ms) {
    auto q = db_->query(sql_key_forget);
    q->bind(1, now_ms);
    q.run();
  }

  // Removes the oldest notifications of one history (a user's, or the broadcasts') beyond
  // `cap`.
  void cap_history(const Notification& added, std::size_t cap) {
    std::int64_t kept = 0;
    {
      auto q = db_->query(sql_kept);
      q->bind(1, added.broadcast ? 1 : 0);
      q->bind(2, added.broadcast ? std::string_view("") : std::string_view(added.user_id));
      if (q->step())
        kept = q->int64(0);
    }
    drop_oldest(added.broadcast, added.user_id, kept - to_db(cap));
  }

  // Removes the `count` oldest notifications of a user's history or the broadcasts'.
  void drop_oldest(bool broadcast, std::string_view user, std::int64_t count) {
    if (count <= 0)
      return;
    auto drop = db_->query(broadcast ? sql_drop_oldest_broadcasts : sql_drop_oldest_user);
    int index = 1;
    if (!broadcast)
      drop->bind(index++, user);
    drop->bind(index, count);
    drop.run();
  }

  // Every limit, over every history: what prune() does, and opening. Walks the histories
  // (one row per user) and what it removes, not every notification. Returns how many went.
  std::size_t apply_retention(std::int64_t now_ms) {
    struct Over {
      bool broadcast;
      std::string user;
      std::int64_t excess;
    };
    std::vector<Over> over;
    {
      auto q = db_->query(sql_over_cap);
      q->bind(1, to_db(options_.max_per_user));
      q->bind(2, to_db(options_.max_broadcasts));
      while (q->step()) {
        const bool broadcast = q->int64(0) != 0;
        over.push_back(
            {broadcast, q->text(1),
             q->int64(2) - to_db(broadcast ? options_.max_broadcasts : options_.max_per_user)});
      }
    }
    std::size_t removed = 0;
    for (const auto& h : over) {
      drop_oldest(h.broadcast, h.user, h.excess);
      removed += static_cast<std::size_t>(db_->changes());
    }
    return removed + remove_older_than(now_ms);
  }

  std::size_t remove_older_than(std::int64_t now_ms) {
    if (options_.max_age.count() == 0)
      return 0;
    const auto max_age_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_age).count();
    auto q = db_->query(sql_age);
    q->bind(1, now_ms - max_age_ms);
    q->bind(2, int64_max);
    q.run();
    return static_cast<std::size_t>(db_->changes());
  }

 private:
  static std::unique_ptr<Database> open(const std::string& path,
                                        const SqliteStoreOptions& options) {
    try {
      auto db = std::make_unique<Database>(path);
      sqlite3_busy_timeout(
          db->handle(), static_cast<int>(std::min<std::int64_t>(options.busy_timeout.count(),
                                                                std::numeric_limits<int>::max())));
      // SQLite opens a file it may not write read-only, without a word: every publish would
      // fail, and the host would learn it from its first one.
      if (sqlite3_db_readonly(db->handle(), "main") == 1)
        throw std::runtime_error("the database file is read-only to this process");
      // Before anything is written to it (WAL mode is a change of the file).
      sqlite::check_is_ours(*db);
      // WAL: readers do not block the writer and a commit is an append to the log. An
      // in-memory database answers "memory" and stays as it is.
      db->exec_text("PRAGMA journal_mode = WAL");
      db->exec("PRAGMA synchronous = NORMAL");
      sqlite::migrate(*db);
      return db;
    } catch (...) {
      rethrow_opening(path);
    }
  }

  // Called by SQLite after each commit of db_, under `mutex` as every commit is (so one at a
  // time, as Checkpointer::committed() requires).
  static int on_commit(void* self, sqlite3* db, const char*, int log_pages) {
    static_cast<Impl*>(self)->checkpointer_->committed(db, log_pages);
    return SQLITE_OK;
  }

  // An exclusive flock() on the database file for as long as the store is open: a second
  // SqliteStore on the file, in this process or another, is refused. Two would both write
  // correctly, but each hub delivers live only what it appends itself: a connection of one
  // would miss, until it reconnects, what the other published, yet hold a cursor past it.
  // (A descriptor of its own, closed after SQLite's: closing one of the file's descriptors
  // drops every POSIX lock this process holds on it, SQLite's own among them.)
  class Owner {
   public:
    explicit Owner(int fd) noexcept : fd_(fd) {}
    ~Owner() {
      if (fd_ >= 0)
        ::close(fd_);
    }
    Owner(const Owner&) = delete;
    Owner& operator=(const Owner&) = delete;

   private:
    int fd_;
  };

  static std::unique_ptr<Owner> own(const std::string& path) {
    if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0)
      return nullptr;  // private, or a URI (not a plain path): nothing to share
    // Created when missing, as SQLite would (an empty file is an empty database), so that
    // the lock comes before anything is written.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return nullptr;  // no such directory, no access: SQLite's open says what is wrong
    auto owner = std::make_unique<Owner>(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      if (error == EWOULDBLOCK)
        throw std::system_error(EBUSY, std::generic_category(),
                                "notify::SqliteStore '" + path +
                                    "': another SqliteStore has the file open (in this process "
                                    "or another): a database file serves one at a time");
      // A file system without flock (some network ones): nothing to refuse with.
    }
    return owner;
  }

  std::string path_;
  SqliteStoreOptions options_;
  std::unique_ptr<Owner> owner_;  // before db_: it goes last
  std::unique_ptr<Database> db_;
  std::unique_ptr<sqlite::Checkpointer> checkpointer_;  // after db_: it goes first
};

// --- SqliteStore ---------------------------------------------------------------------------

namespace {
SqliteStoreOptions checked(SqliteStoreOptions options) {
  if (options.max_per_user == 0 || options.max_broadcasts == 0)
    throw std::invalid_argument("SqliteStore: history sizes must be at least 1");
  if (options.max_age.count() < 0)
    throw std::invalid_argument("SqliteStore: max_age < 0");
  if (options.busy_timeout.count() < 0)
    throw std::invalid_argument("SqliteStore: busy_timeout < 0");
  // The Checkpointer's sizes are multiples of it, in an int.
  constexpr auto largest_pages = static_cast<std::size_t>(
      std::numeric_limits<int>::max() /
      (sqlite::Checkpointer::restart_factor * sqlite::Checkpointer::catch_up_factor));
  if (options.checkpoint_pages > largest_pages)
    throw std::invalid_argument("SqliteStore: checkpoint_pages is too large (at most " +
                                std::to_string(largest_pages) + ")");
  check_idempotency_window(options.idempotency_window, "SqliteStore");
  return options;
}
}  // namespace

SqliteStore::SqliteStore(std::string path, SqliteStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(path), checked(options))) {}

SqliteStore::~SqliteStore() = default;

const std::string& SqliteStore::path() const noexcept {
  return impl_->path();
}

int SqliteStore::schema_version() {
  std::lock_guard lock(impl_->mutex);
  return std::stoi(impl_->db().exec_text("PRAGMA user_version"));
}

Notification SqliteStore::append(Notification draft) {
  std::vector<Notification> one;
  one.push_back(std::move(draft));
  return std::move(append_all(std::move(one)).front());
}

std::vector<Notification> SqliteStore::append_all(std::vector<Notification> drafts) {
  for (const auto& draft : drafts) {
    if (!draft.broadcast && draft.user_id.empty())
      throw std::invalid_argument("SqliteStore: a notification needs a user or broadcast");
  }
  std::lock_guard lock(impl_->mutex);
  const auto at = now();
  Transaction transaction(impl_->db(), Transaction::Kind::write);
  bool keyed = false;
  for (auto& draft : drafts) {
    impl_->insert(draft, at.text, at.ms);
    keyed = keyed || !draft.idempotency_key.empty();
  }
  impl_->remove_older_than(at.ms);
  if (keyed)
    impl_->forget_expired_keys(at.ms);
  transaction.commit();
  return drafts;
}

std::uint64_t SqliteStore::head() {
  std::lock_guard lock(impl_->mutex);
  return impl_->head();
}

Snapshot SqliteStore::snapshot(std::string_view user, std::size_t limit) {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::read);
  Snapshot snap;
  snap.cursor = impl_->head();
  snap.unread_count = impl_->unread(user);
  snap.unread = impl_->view(sql_view_unread_newest(), user, 0, snap.cursor, limit);
  transaction.commit();
  return snap;
}

std::optional<Resume> SqliteStore::resume(std::string_view user, std::uint64_t cursor,
                                          std::size_t limit, std::size_t max_missed) {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::read);
  const auto head = impl_->head();
  if (cursor > head)
    return std::nullopt;
  if (cursor < impl_->removed_upto(user) || (cursor != 0 && cursor < impl_->base()))
    return std::nullopt;
  Resume r;
  r.head = head;
  r.last_read = impl_->last_read(user);
  // One more than allowed tells "too many" without reading them all.
  const std::uint64_t fetch = max_missed == std::numeric_limits<std::size_t>::max()
                                  ? max_missed
                                  : static_cast<std::uint64_t>(max_missed) + 1;
  r.missed = impl_->view(sql_view_oldest(), user, cursor, head, fetch);
  if (r.missed.size() > max_missed)
    return std::nullopt;
  const auto unread_missed = static_cast<std::uint64_t>(
      std::count_if(r.missed.begin(), r.missed.end(), [](const auto& n) { return !n.is_read(); }));
  r.snapshot.cursor = cursor;
  r.snapshot.unread_count = impl_->unread(user) - unread_missed;
  r.snapshot.unread = impl_->view(sql_view_unread_newest(), user, 0, cursor, limit);
  transaction.commit();
  return r;
}

std::vector<Notification> SqliteStore::list(std::string_view user, bool unread_only,
                                            std::size_t limit) {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::read);
  auto out = impl_->view(unread_only ? sql_view_unread_newest() : sql_view_newest(), user, 0,
                         impl_->head(), limit);
  transaction.commit();
  return out;
}

std::uint64_t SqliteStore::unread_count(std::string_view user) {
  std::lock_guard lock(impl_->mutex);
  return impl_->unread(user);
}

ReadResult SqliteStore::mark_read(std::string_view user, std::string_view id) {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::write);
  auto result = impl_->mark_one(user, id, now().text);
  transaction.commit();
  return result;
}

ReadResult SqliteStore::mark_all_read(std::string_view user) {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::write);
  auto result = impl_->mark_all(user, now().text);
  transaction.commit();
  return result;
}

std::vector<ReadResult> SqliteStore::mark_many(const std::vector<MarkQuery>& marks) {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::write);
  const auto at = now().text;
  std::vector<ReadResult> results;
  results.reserve(marks.size());
  for (const auto& m : marks)
    results.push_back(m.id ? impl_->mark_one(m.user, *m.id, at) : impl_->mark_all(m.user, at));
  transaction.commit();
  return results;
}

std::size_t SqliteStore::prune() {
  std::lock_guard lock(impl_->mutex);
  Transaction transaction(impl_->db(), Transaction::Kind::write);
  const auto removed = impl_->apply_retention(now().ms);
  transaction.commit();
  return removed;
}

}  // namespace notify
