#include <notify/memory_store.hpp>

#include <doctest/doctest.h>

using notify::MemoryStore;
using notify::Notification;

namespace {
Notification draft(const std::string& user, const std::string& title) {
  Notification n;
  n.user_id = user;
  n.type = "comment";
  n.title = title;
  return n;
}
Notification broadcast(const std::string& title) {
  Notification n;
  n.broadcast = true;
  n.type = "system";
  n.title = title;
  return n;
}
}  // namespace

TEST_CASE("memory store: ids increase and snapshots list unread newest first") {
  MemoryStore store;
  const auto a = store.append(draft("alice", "a1"));
  const auto b = store.append(draft("bob", "b1"));
  const auto c = store.append(draft("alice", "a2"));
  CHECK(a.id == "1");
  CHECK(b.id == "2");
  CHECK(c.id == "3");
  CHECK(c.created_at.size() == 24);
  CHECK(store.head() == 3);
  const auto snap = store.snapshot("alice", 10);
  REQUIRE(snap.unread.size() == 2);
  CHECK(snap.unread[0].title == "a2");
  CHECK(snap.unread[1].title == "a1");
  CHECK(snap.unread_count == 2);
  CHECK(snap.cursor == 3);
  CHECK(store.snapshot("nobody", 10).unread.empty());
}

TEST_CASE("memory store: snapshot limit does not change the count") {
  MemoryStore store;
  for (int i = 0; i < 5; ++i) store.append(draft("u", "n" + std::to_string(i)));
  const auto snap = store.snapshot("u", 2);
  CHECK(snap.unread.size() == 2);
  CHECK(snap.unread_count == 5);
}

TEST_CASE("memory store: mark read and read all") {
  MemoryStore store;
  const auto a = store.append(draft("alice", "a1"));
  store.append(draft("alice", "a2"));
  const auto head_before = store.head();
  auto r = store.mark_read("alice", a.id);
  CHECK(r.ids == std::vector<std::string>{a.id});
  CHECK(r.unread_count == 1);
  CHECK(r.seq == head_before + 1);
  SUBCASE("twice changes nothing") {
    auto again = store.mark_read("alice", a.id);
    CHECK(again.ids.empty());
    CHECK(again.unread_count == 1);
  }
  SUBCASE("another user's id changes nothing") {
    auto other = store.mark_read("bob", a.id);
    CHECK(other.ids.empty());
    CHECK(store.unread_count("alice") == 1);
  }
  SUBCASE("garbage ids change nothing") {
    CHECK(store.mark_read("alice", "x").ids.empty());
    CHECK(store.mark_read("alice", "999").ids.empty());
  }
  SUBCASE("read all") {
    auto all = store.mark_all_read("alice");
    CHECK(all.ids.size() == 1);
    CHECK(all.unread_count == 0);
    CHECK(store.list("alice", true, 10).empty());
    CHECK(store.list("alice", false, 10).size() == 2);
  }
}

TEST_CASE("memory store: broadcasts are seen by every user with their own read state") {
  MemoryStore store;
  store.append(draft("alice", "a1"));
  const auto b = store.append(broadcast("maintenance"));
  CHECK(b.user_id.empty());
  CHECK(store.unread_count("alice") == 2);
  CHECK(store.unread_count("carol") == 1);
  store.mark_read("carol", b.id);
  CHECK(store.unread_count("carol") == 0);
  CHECK(store.unread_count("alice") == 2);
  const auto list = store.list("carol", false, 10);
  REQUIRE(list.size() == 1);
  CHECK_FALSE(list[0].read_at.empty());
  CHECK(store.list("alice", false, 10)[0].read_at.empty());
}

TEST_CASE("memory store: resume gives the state at the cursor and what came after") {
  MemoryStore store;
  store.append(draft("alice", "a1"));
  store.append(draft("alice", "a2"));
  const auto cursor = store.head();
  store.append(draft("bob", "b1"));
  store.append(draft("alice", "a3"));
  store.append(broadcast("all"));
  auto r = store.resume("alice", cursor, 10, 100);
  REQUIRE(r);
  CHECK(r->snapshot.cursor == cursor);
  CHECK(r->snapshot.unread.size() == 2);
  CHECK(r->snapshot.unread_count == 2);
  REQUIRE(r->missed.size() == 2);
  CHECK(r->missed[0].title == "a3");
  CHECK(r->missed[1].title == "all");
  CHECK(r->head == store.head());

  CHECK_FALSE(store.resume("alice", store.head() + 1, 10, 100));  // from the future
  CHECK_FALSE(store.resume("alice", cursor, 10, 1));               // too much missed
}

TEST_CASE("memory store: a cursor older than the kept history is refused") {
  MemoryStore store(notify::MemoryStoreOptions{3, 3});
  for (int i = 0; i < 5; ++i) store.append(draft("u", std::to_string(i)));
  CHECK(store.list("u", false, 100).size() == 3);
  CHECK(store.unread_count("u") == 3);
  CHECK_FALSE(store.resume("u", 1, 10, 100));
  CHECK(store.resume("u", 2, 10, 100));
  CHECK(store.resume("other", 1, 10, 100));  // nothing of theirs was dropped
}

TEST_CASE("store: parse_sequence") {
  CHECK(notify::parse_sequence("42") == 42u);
  CHECK(notify::parse_sequence("0") == 0u);
  CHECK_FALSE(notify::parse_sequence(""));
  CHECK_FALSE(notify::parse_sequence("-1"));
  CHECK_FALSE(notify::parse_sequence("4a"));
  CHECK_FALSE(notify::parse_sequence("99999999999999999999999"));
}
