// SqliteStore's own cases: persistence, schema migration, retention, concurrency, speed, and
// a randomized comparison with MemoryStore. The Store contract cases are in
// store_contract_test.cpp (they run against SqliteStore as well).
#include "store_factories.hpp"

#ifdef NOTIFY_TEST_HAVE_SQLITE

#include <notify/memory_store.hpp>
#include <notify/sqlite_store.hpp>

#include "../support/temp_dir.hpp"
#include "sqlite/statements.hpp"

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using notify::Notification;
using notify::SqliteStore;
using notify::SqliteStoreOptions;
using test::broadcast;
using test::draft;

namespace {

using TempDir = testsupport::TempDir;

// Options whose ids are 1, 2, 3...: cases that name positions by number.
SqliteStoreOptions counting() {
  SqliteStoreOptions o;
  o.seed_from_clock = false;
  return o;
}

std::vector<std::string> titles(const std::vector<Notification>& notifications) {
  std::vector<std::string> out;
  for (const auto& n : notifications)
    out.push_back(n.title);
  return out;
}

// What two stores must agree on about a notification (timestamps differ by construction).
std::string summary(const Notification& n) {
  return n.id + "|" + n.user_id + "|" + (n.broadcast ? "b" : "-") + "|" + n.title + "|" +
         (n.is_read() ? "read" : "unread");
}

std::vector<std::string> summaries(const std::vector<Notification>& notifications) {
  std::vector<std::string> out;
  for (const auto& n : notifications)
    out.push_back(summary(n));
  return out;
}

// Writes a big-endian 32-bit value into a closed database file's header.
void patch_header(const std::string& path, std::streamoff offset, std::uint32_t value) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(offset);
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  f.write(bytes, 4);
  REQUIRE(f);
}

}  // namespace

TEST_CASE("sqlite store: options and drafts are checked") {
  SqliteStoreOptions zero_users;
  zero_users.max_per_user = 0;
  CHECK_THROWS_AS(SqliteStore(":memory:", zero_users), std::invalid_argument);
  SqliteStoreOptions zero_broadcasts;
  zero_broadcasts.max_broadcasts = 0;
  CHECK_THROWS_AS(SqliteStore(":memory:", zero_broadcasts), std::invalid_argument);
  SqliteStoreOptions negative_age;
  negative_age.max_age = std::chrono::seconds(-1);
  CHECK_THROWS_AS(SqliteStore(":memory:", negative_age), std::invalid_argument);
  SqliteStoreOptions window;
  window.idempotency_window = std::chrono::milliseconds(0);
  CHECK_THROWS_AS(SqliteStore(":memory:", window), std::invalid_argument);
  window.idempotency_window = notify::max_idempotency_window + std::chrono::milliseconds(1);
  CHECK_THROWS_AS(SqliteStore(":memory:", window), std::invalid_argument);
  window.idempotency_window = notify::max_idempotency_window;
  CHECK_NOTHROW(SqliteStore(":memory:", window));

  SqliteStore store(":memory:");
  CHECK_THROWS_AS(store.append(draft("", "nobody's")), std::invalid_argument);
  CHECK(store.head() == 0);
  CHECK(store.path() == ":memory:");

  // An empty user (an empty string_view may have no data at all) sees the broadcasts only.
  const auto b = store.append(broadcast("b"));
  CHECK(store.unread_count(std::string_view()) == 1);
  CHECK(store.mark_all_read(std::string_view()).ids == std::vector<std::string>{b.id});
  CHECK(store.unread_count("") == 0);
  CHECK(store.unread_count("someone") == 1);
}

TEST_CASE("sqlite store: a restart keeps notifications, read state and the sequence") {
  TempDir dir;
  const auto path = dir.file("store.db");
  std::uint64_t cursor = 0;
  std::string last;
  {
    SqliteStore store(path);
    const auto a1 = store.append(draft("alice", "a1"));
    const auto b = store.append(broadcast("b"));
    store.append(draft("alice", "a2"));
    store.mark_read("alice", a1.id);
    store.mark_read("carol", b.id);
    cursor = store.head();  // what a client saw before the restart
    store.append(draft("alice", "a3"));
    last = store.append(draft("alice", "a4")).id;
  }
  SqliteStore store(path);
  CHECK(std::to_string(store.head()) == last);
  const auto a5 = store.append(draft("alice", "a5"));
  CHECK(std::stoull(a5.id) > std::stoull(last));

  const auto snap = store.snapshot("alice", 10);
  CHECK(titles(snap.unread) == std::vector<std::string>{"a5", "a4", "a3", "a2", "b"});
  CHECK(snap.unread_count == 5);
  CHECK(store.unread_count("carol") == 0);
  CHECK(titles(store.list("alice", false, 10)).back() == "a1");
  CHECK(store.list("alice", false, 10).back().is_read());

  const auto r = store.resume("alice", cursor, 10, 100);
  REQUIRE(r);
  CHECK(titles(r->missed) == std::vector<std::string>{"a3", "a4", "a5"});
  CHECK(titles(r->snapshot.unread) == std::vector<std::string>{"a2", "b"});
  CHECK(r->snapshot.unread_count == 2);
  CHECK(r->head == store.head());
}

TEST_CASE("sqlite store: schema migration") {
  TempDir dir;

  SUBCASE("an empty file gets the current schema, and reopening keeps it") {
    const auto path = dir.file("empty.db");
    std::ofstream(path).close();
    REQUIRE(std::filesystem::file_size(path) == 0);
    {
      SqliteStore store(path);
      CHECK(store.schema_version() == SqliteStore::current_schema_version);
      CHECK(store.schema_version() == 5);
      store.append(draft("u", "one"));
    }
    SqliteStore again(path);
    CHECK(again.schema_version() == 5);
    CHECK(again.list("u", false, 10).size() == 1);
  }
  SUBCASE("version 1 (no read_changes, publish_keys, base) is brought to 5, its data kept") {
    const auto path = dir.file("v1.db");
    std::string id;
    {
      SqliteStore store(path);
      id = store.append(draft("u", "one")).id;
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "DROP INDEX notifications_unread; DROP TABLE read_changes;"
                       " DROP TABLE publish_keys;"
                       " ALTER TABLE sequence DROP COLUMN base; PRAGMA user_version = 1;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);

    SqliteStore store(path);
    CHECK(store.schema_version() == 5);
    // Its base is not known: no cursor is refused for it (1 is below every clock-seeded id).
    CHECK(store.resume("u", 1, 10, 100));
    auto keyed = draft("u", "two");
    keyed.idempotency_key = "k";
    const auto two = store.append(keyed);
    CHECK(store.append(keyed).id == two.id);
    CHECK(store.unread_count("u") == 2);
    const auto read = store.mark_read("u", id);
    REQUIRE(read.ids.size() == 1);
    const auto r = store.resume("u", 0, 10, 100);
    REQUIRE(r);
    CHECK(r->last_read == read.seq);
  }
  SUBCASE("version 4 (no unread index) is brought to 5: the index lists what is unread") {
    const auto path = dir.file("v4.db");
    std::string first;
    {
      SqliteStore store(path, counting());
      first = store.append(draft("u", "one")).id;
      store.append(draft("u", "two"));
      store.append(draft("v", "three"));
      store.mark_read("u", first);
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "DROP INDEX notifications_unread; PRAGMA user_version = 4;", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);

    {
      SqliteStore store(path, counting());
      CHECK(store.schema_version() == 5);
      CHECK(store.unread_count("u") == 1);
      CHECK(titles(store.list("u", true, 10)) == std::vector<std::string>{"two"});
      CHECK(store.mark_all_read("u").ids.size() == 1);
      CHECK(store.unread_count("u") == 0);
      CHECK(store.unread_count("v") == 1);
    }
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db,
                               "SELECT count(*) FROM notifications INDEXED BY notifications_unread"
                               " WHERE user_id IS NOT NULL AND read_at IS NULL",
                               -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    CHECK(sqlite3_column_int(stmt, 0) == 1);  // "three", for v
    sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  SUBCASE("a schema newer than this code is refused") {
    const auto path = dir.file("newer.db");
    { SqliteStore store(path); }
    patch_header(path, 60, 99);  // the header's user_version field
    try {
      SqliteStore store(path);
      FAIL("opened a database of schema version 99");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()).find("schema version 99") != std::string::npos);
    }
  }
  SUBCASE("a file that is not a database: SQLite's message") {
    const auto path = dir.file("text.db");
    std::ofstream(path) << std::string(4096, 'x');
    try {
      SqliteStore store(path);
      FAIL("opened a text file");
    } catch (const std::system_error& e) {
      CHECK(std::string(e.what()).find("file is not a database") != std::string::npos);
      CHECK(std::string(e.code().category().name()) == "sqlite");
    }
  }
  SUBCASE("a path that cannot be opened") {
    CHECK_THROWS_AS(SqliteStore(dir.file("no/such/dir/x.db")), std::system_error);
  }
  SUBCASE("another application's database is refused and left as it was") {
    struct Row {
      const char* name;
      const char* sql;
      const char* says;
    };
    for (const Row& row : {
             Row{"tables, version 0", "CREATE TABLE accounts (id INTEGER);", "it has tables"},
             Row{"version 4, none of notify's tables",
                 "CREATE TABLE accounts (id INTEGER); PRAGMA user_version = 4;",
                 "without notify's tables"},
             Row{"another application id", "PRAGMA application_id = 42;", "id 42"},
         }) {
      CAPTURE(row.name);
      const auto path = dir.file(std::string(row.name) + ".db");
      sqlite3* db = nullptr;
      REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
      REQUIRE(sqlite3_exec(db, row.sql, nullptr, nullptr, nullptr) == SQLITE_OK);
      sqlite3_close(db);
      try {
        SqliteStore store(path);
        FAIL("opened another application's database");
      } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("not a notify database") != std::string::npos);
        CHECK(std::string(e.what()).find(row.says) != std::string::npos);
      }
      // Not even switched to WAL: the other application finds its file as it left it.
      REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
      sqlite3_stmt* stmt = nullptr;
      REQUIRE(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr) == SQLITE_OK);
      REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
      CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0))) == "delete");
      sqlite3_finalize(stmt);
      sqlite3_close(db);
    }
  }
}

// What SQLite would walk for each statement that reads or marks a user's unread notifications:
// the unread ones (the partial index of version 5), not everything the user keeps (a user
// keeping 200,000 made each of these take 75-240 ms).
TEST_CASE("sqlite store: a user's unread reads walk the unread index") {
  TempDir dir;
  const auto path = dir.file("plan.db");
  { SqliteStore store(path); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  const auto plan = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    const std::string explain = std::string("EXPLAIN QUERY PLAN ") + sql;
    REQUIRE(sqlite3_prepare_v2(db, explain.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    while (sqlite3_step(stmt) == SQLITE_ROW)
      out += std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3))) + "\n";
    sqlite3_finalize(stmt);
    return out;
  };
  for (const char* sql :
       {notify::sqlite::sql_unread_count, notify::sqlite::sql_unread_own,
        notify::sqlite::sql_read_own, notify::sqlite::sql_view_unread_newest().c_str()}) {
    CAPTURE(sql);
    const auto how = plan(sql);
    CAPTURE(how);
    CHECK(how.find("USING INDEX notifications_unread (user_id=?") != std::string::npos);
  }
  sqlite3_close(db);
}

TEST_CASE("sqlite store: one store per file; limits of the sequence and the options") {
  TempDir dir;
  const auto path = dir.file("one.db");
  SUBCASE("a second store on the file is refused while the first is open") {
    {
      SqliteStore first(path);
      first.append(draft("u", "one"));
      try {
        SqliteStore second(path);
        FAIL("two stores on one file");
      } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::device_or_resource_busy);
        CHECK(std::string(e.what()).find("another SqliteStore") != std::string::npos);
      }
      CHECK(first.unread_count("u") == 1);  // the first one goes on
      first.append(draft("u", "two"));
    }
    SqliteStore after(path);  // once it is closed, the file is free
    CHECK(after.unread_count("u") == 2);
  }
  SUBCASE("a sequence used up refuses to give a number again") {
    std::string last;
    {
      SqliteStore store(path, counting());
      store.append(draft("u", "first"));
    }
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "UPDATE sequence SET head = 9223372036854775806", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(db);
    SqliteStore store(path, counting());
    CHECK(store.append(draft("u", "the last number")).id == "9223372036854775807");
    CHECK_THROWS_AS(store.append(draft("u", "one too many")), std::runtime_error);
    CHECK_THROWS_AS(store.mark_all_read("u"), std::runtime_error);
    CHECK(store.unread_count("u") == 2);
  }
  SUBCASE("checkpoint_pages whose multiples would not fit in an int") {
    SqliteStoreOptions options;
    options.checkpoint_pages = 300'000'000;
    CHECK_THROWS_AS(SqliteStore(path, options), std::invalid_argument);
    options.checkpoint_pages = 200'000'000;
    CHECK_NOTHROW(SqliteStore(path, options));
  }
  SUBCASE("a file this process may not write is refused at once") {
    if (::geteuid() == 0) {
      MESSAGE("running as root, who may write any file: not checked");
      return;
    }
    { SqliteStore store(path); }
    std::filesystem::permissions(path, std::filesystem::perms::owner_read,
                                 std::filesystem::perm_options::replace);
    try {
      SqliteStore store(path);
      FAIL("opened a read-only file");
    } catch (const std::exception& e) {
      CHECK(std::string(e.what()).find("read-only") != std::string::npos);
    }
  }
}

TEST_CASE("sqlite store: retention by count, on append and by prune(), across restarts") {
  TempDir dir;
  const auto path = dir.file("count.db");
  {
    SqliteStore store(path, counting());
    for (int i = 1; i <= 6; ++i)
      store.append(draft("u", "u" + std::to_string(i)));  // 1..6
    store.append(draft("v", "v7"));                       // 7
    for (int i = 8; i <= 10; ++i)
      store.append(broadcast("b" + std::to_string(i)));  // 8..10
  }
  SqliteStoreOptions small = counting();
  small.max_per_user = 2;
  small.max_broadcasts = 1;
  {
    // Lower limits apply as the file opens, not in the next publish (nor the next prune()).
    SqliteStore store(path, small);
    CHECK(titles(store.list("u", false, 10)) == std::vector<std::string>{"b10", "u6", "u5"});
    CHECK(store.prune() == 0);
    CHECK(store.unread_count("v") == 2);
    CHECK_FALSE(store.resume("u", 3, 10, 100));  // u1..u4 are gone
    CHECK_FALSE(store.resume("v", 7, 10, 100));  // b8 and b9 are gone
    CHECK(store.resume("v", 9, 10, 100));
    store.append(draft("u", "u11"));  // the cap on append: u5 goes
    CHECK(titles(store.list("u", false, 10)) == std::vector<std::string>{"u11", "b10", "u6"});
    store.append(draft("u", "u12"));  // u6 goes
    store.append(draft("u", "u13"));  // u11 goes
  }
  SqliteStore store(path, small);  // what was removed stays known after a restart
  CHECK(titles(store.list("u", false, 10)) == std::vector<std::string>{"u13", "u12", "b10"});
  CHECK_FALSE(store.resume("u", 10, 10, 100));
  CHECK(store.resume("u", 11, 10, 100));
  CHECK(store.resume("w", 9, 10, 100));
  CHECK_FALSE(store.resume("w", 8, 10, 100));
}

TEST_CASE("sqlite store: retention by age, on opening, on append and by prune()") {
  TempDir dir;
  const auto on_open = dir.file("age-open.db");
  const auto on_prune = dir.file("age-prune.db");
  for (const auto& path : {on_open, on_prune}) {
    SqliteStore store(path, counting());
    store.append(draft("u", "old"));           // 1
    store.append(broadcast("old broadcast"));  // 2
    store.append(draft("v", "old"));           // 3
  }
  SqliteStoreOptions young = counting();
  young.max_age = std::chrono::seconds(3);
  // Opened while all is young, and kept open: what ages meanwhile goes at the next append or
  // prune().
  SqliteStore pruned(on_prune, young);
  CHECK(pruned.list("u", false, 10).size() == 2);
  // The new ones must stay younger than max_age until the checks: a loaded machine has taken
  // over a second for the few calls between the append and prune().
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  CHECK(pruned.list("u", false, 10).size() == 2);  // no append, no prune yet
  CHECK(pruned.prune() == 3);
  CHECK(pruned.list("u", false, 10).empty());
  CHECK(pruned.unread_count("u") == 0);
  CHECK_FALSE(pruned.resume("u", 1, 10, 100));
  CHECK(pruned.resume("u", 2, 10, 100));
  CHECK_FALSE(pruned.resume("v", 2, 10, 100));
  {
    SqliteStore store(on_open, young);  // what is older goes as the file opens
    CHECK(store.list("u", false, 10).empty());
    CHECK(store.list("v", false, 10).empty());
    CHECK_FALSE(store.resume("v", 2, 10, 100));
    CHECK(store.resume("v", 3, 10, 100));
    store.append(draft("u", "new"));  // 4
    CHECK(titles(store.list("u", false, 10)) == std::vector<std::string>{"new"});
    CHECK(store.prune() == 0);
  }
  SqliteStoreOptions forever = counting();  // max_age 0
  SqliteStore store(on_open, forever);
  CHECK(store.prune() == 0);
  CHECK(store.list("u", false, 10).size() == 1);
}

TEST_CASE("sqlite store: behaves like MemoryStore over random operations") {
  test::StoreLimits limits{5, 3};
  auto memory = test::MemoryStoreFactory::make(limits);
  auto sqlite = test::SqliteStoreFactory::make(limits);
  std::mt19937 random(20240601);
  auto pick = [&random](std::uint64_t from, std::uint64_t to) {
    return std::uniform_int_distribution<std::uint64_t>(from, to)(random);
  };
  const std::vector<std::string> users{"u0", "u1", "u2", "u3"};
  for (int step = 0; step < 1500; ++step) {
    CAPTURE(step);
    const auto& user = users[pick(0, users.size() - 1)];
    const auto op = pick(0, 99);
    if (op < 45) {
      auto d = draft(user, "n" + std::to_string(step));
      REQUIRE(memory->append(d).id == sqlite->append(d).id);
    } else if (op < 55) {
      auto d = broadcast("b" + std::to_string(step));
      REQUIRE(memory->append(d).id == sqlite->append(d).id);
    } else if (op < 85) {
      const auto id = std::to_string(pick(0, memory->head() + 2));
      const auto m = memory->mark_read(user, id);
      const auto s = sqlite->mark_read(user, id);
      CHECK(m.ids == s.ids);
      CHECK(m.unread_count == s.unread_count);
      CHECK(m.seq == s.seq);
    } else if (op < 90) {
      const auto m = memory->mark_all_read(user);
      const auto s = sqlite->mark_all_read(user);
      CHECK(m.ids == s.ids);
      CHECK(m.unread_count == s.unread_count);
      CHECK(m.seq == s.seq);
    }
    REQUIRE(memory->head() == sqlite->head());

    const auto limit = pick(0, 6);
    const auto m_snap = memory->snapshot(user, limit);
    const auto s_snap = sqlite->snapshot(user, limit);
    CHECK(summaries(m_snap.unread) == summaries(s_snap.unread));
    CHECK(m_snap.unread_count == s_snap.unread_count);
    CHECK(m_snap.cursor == s_snap.cursor);

    const auto unread_only = pick(0, 1) == 1;
    CHECK(summaries(memory->list(user, unread_only, limit)) ==
          summaries(sqlite->list(user, unread_only, limit)));
    CHECK(memory->unread_count(user) == sqlite->unread_count(user));

    const auto cursor = pick(0, memory->head() + 1);
    const auto max_missed = pick(0, 12);
    const auto m_resume = memory->resume(user, cursor, limit, max_missed);
    const auto s_resume = sqlite->resume(user, cursor, limit, max_missed);
    REQUIRE(m_resume.has_value() == s_resume.has_value());
    if (m_resume) {
      CHECK(summaries(m_resume->missed) == summaries(s_resume->missed));
      CHECK(summaries(m_resume->snapshot.unread) == summaries(s_resume->snapshot.unread));
      CHECK(m_resume->snapshot.unread_count == s_resume->snapshot.unread_count);
      CHECK(m_resume->snapshot.cursor == s_resume->snapshot.cursor);
      CHECK(m_resume->head == s_resume->head);
    }
  }
}

TEST_CASE("sqlite store: a new file or backup reuses no id a client holds, and resets it") {
  TempDir dir;
  const auto path = dir.file("store.db");
  const auto backup = dir.file("backup.db");
  std::uint64_t cursor = 0;
  {
    SqliteStore store(path);
    store.append(draft("alice", "a1"));
    {
      SqliteStore copy(backup);  // an empty file is a backup from before a1 too
    }
    store.append(draft("alice", "a2"));
    cursor = store.head();  // what a client holds when the database is lost
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a restore takes a while
  for (const auto& restored : {backup, dir.file("new.db")}) {
    CAPTURE(restored);
    SqliteStore store(restored);
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
      ids.push_back(store.append(draft("alice", "after " + std::to_string(i))).id);
      CHECK(std::stoull(ids.back()) > cursor);
    }
    // The client's cursor is below where this database's sequence began: it is reset (with
    // ids 1, 2, 3 it would have resumed after 2 and missed the first two; resuming, it would
    // keep a1 and a2, which this database does not have). Its new snapshot has all three.
    CHECK_FALSE(store.resume("alice", cursor, 10, 100));
    const auto fresh = store.resume("alice", 0, 10, 100);
    REQUIRE(fresh);
    std::vector<std::string> missed;
    for (const auto& n : fresh->missed)
      missed.push_back(n.id);
    CHECK(missed == ids);
    CHECK(store.resume("alice", std::stoull(ids[0]), 10, 100));
  }
}

TEST_CASE("sqlite store: 5000 appends to a file (WAL, synchronous=NORMAL), rate reported") {
  TempDir dir;
  SqliteStore store(dir.file("speed.db"), counting());  // the head is the count
  constexpr int count = 5000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    auto d = draft("user" + std::to_string(i % 100), "notification " + std::to_string(i));
    d.body = "a body of some length, as a real notification would have";
    d.data = {{"orderId", i}};
    store.append(std::move(d));
  }
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  const double per_second = count / elapsed.count();
  MESSAGE("SqliteStore: " << count << " appends in " << elapsed.count() * 1000
                          << " ms = " << static_cast<long>(per_second) << " appends/s");
  CHECK(store.head() == count);  // a figure, not a speed assertion: tests never time things
}

namespace {
std::uintmax_t size_of(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}
}  // namespace

TEST_SUITE("concurrency") {
  // The store's checkpoint thread copies the log into the database file while appends go on,
  // and every fourth checkpoint finishes in the next commit, so that the log starts over: it
  // stays near 4 × checkpoint_pages instead of growing with every append (≈ 4 pages each).
  // This loop appends faster than that thread copies (on a loaded machine much faster): at
  // 8 × checkpoint_pages a commit copies the log itself, and the log never grows beyond.
  TEST_CASE("sqlite store: the checkpoint thread keeps the log short and fills the file") {
    TempDir dir;
    const auto path = dir.file("checkpoints.db");
    SqliteStoreOptions options;
    options.checkpoint_pages = 64;
    options.max_per_user = 100000;
    options.seed_from_clock = false;  // ids 1, 2, 3...: the head is the count
    constexpr int count = 6000;
    std::uintmax_t longest_log = 0;
    {
      SqliteStore store(path, options);
      for (int i = 0; i < count; ++i) {
        auto d = draft("user" + std::to_string(i % 50), "notification " + std::to_string(i));
        d.body = std::string(200, 'b');
        store.append(std::move(d));
        if (i % 100 == 99)
          longest_log = std::max(longest_log, size_of(path + "-wal"));
      }
      // Everything appended is in the file once the thread has caught up (it is still open:
      // closing would copy the log itself).
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (size_of(path) < 1536 * 1024 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      MESSAGE("database file " << size_of(path) << " B, longest log " << longest_log
                               << " B, log at the end " << size_of(path + "-wal") << " B");
      CHECK(size_of(path) >= 1536 * 1024);  // 6,000 rows of ≈ 300 B
      CHECK(store.head() == count);
    }
    // ≈ 24,000 pages (≈ 100 MB) were committed. Before the commits copied the log
    // themselves, its longest was 3–11 MB here, and 63 MB on a loaded machine.
    constexpr std::uintmax_t frame_bytes = 24 + 4096;   // each page in the log has a header
    constexpr std::uintmax_t most_pages = 8 * 64 + 32;  // + the pages of the last commits
    CHECK(longest_log > 0);
    CHECK(longest_log <= 32 + most_pages * frame_bytes);
    SqliteStore reopened(path, options);
    CHECK(reopened.head() == count);
    CHECK(reopened.list("user7", false, 1000).size() == count / 50);
  }

  TEST_CASE("sqlite store: concurrent appends get unique, increasing ids") {
    TempDir dir;
    SqliteStore store(dir.file("threads.db"));
    constexpr int threads = 4;
    constexpr int per_thread = 250;
    std::vector<std::vector<std::uint64_t>> ids(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&store, &ids, t] {
        for (int i = 0; i < per_thread; ++i) {
          const auto user = "user" + std::to_string(t);
          const auto n = store.append(i % 10 == 0 ? broadcast("b") : draft(user, "n"));
          ids[t].push_back(*notify::parse_sequence(n.id));
          if (i % 25 == 0) {
            store.snapshot(user, 5);
            store.mark_all_read(user);
          }
        }
      });
    }
    for (auto& w : workers)
      w.join();
    std::set<std::uint64_t> all;
    for (const auto& own : ids) {
      CHECK(std::is_sorted(own.begin(), own.end()));
      all.insert(own.begin(), own.end());
    }
    CHECK(all.size() == static_cast<std::size_t>(threads * per_thread));
    CHECK(*all.rbegin() <= store.head());
  }
}

#endif  // NOTIFY_TEST_HAVE_SQLITE
