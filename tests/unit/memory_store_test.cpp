// MemoryStore's own cases. The Store contract cases it shares with the other stores are in
// store_contract_test.cpp.
#include <notify/memory_store.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace {
notify::Notification to(const std::string& user) {
  notify::Notification n;
  n.user_id = user;
  n.type = "t";
  n.title = "t";
  return n;
}
}  // namespace

TEST_CASE("memory store: history sizes must be at least 1") {
  CHECK_THROWS_AS(notify::MemoryStore(notify::MemoryStoreOptions{0, 1}), std::invalid_argument);
  CHECK_THROWS_AS(notify::MemoryStore(notify::MemoryStoreOptions{1, 0}), std::invalid_argument);
}

TEST_CASE("memory store: past max_idempotency_keys the oldest key is forgotten first") {
  notify::MemoryStoreOptions options;
  options.max_idempotency_keys = 2;
  notify::MemoryStore store(options);
  const auto keyed = [&](const std::string& key) {
    auto n = to("u");
    n.idempotency_key = key;
    return store.append(n);
  };
  const auto k1 = keyed("k1");
  const auto k2 = keyed("k2");
  CHECK(keyed("k1").id == k1.id);
  const auto k3 = keyed("k3");  // k1 is the oldest kept: it goes
  CHECK(keyed("k2").id == k2.id);
  CHECK(keyed("k3").id == k3.id);
  const auto k1_again = keyed("k1");
  CHECK_FALSE(k1_again.replayed);
  CHECK(k1_again.id != k1.id);

  options.max_idempotency_keys = 0;
  CHECK_THROWS_AS(notify::MemoryStore{options}, std::invalid_argument);
  options.max_idempotency_keys = 1;
  options.idempotency_window = std::chrono::milliseconds(0);
  CHECK_THROWS_AS(notify::MemoryStore{options}, std::invalid_argument);
  options.idempotency_window = notify::max_idempotency_window + std::chrono::milliseconds(1);
  CHECK_THROWS_AS(notify::MemoryStore{options}, std::invalid_argument);
  options.idempotency_window = notify::max_idempotency_window;
  CHECK_NOTHROW(notify::MemoryStore{options});
}

TEST_CASE("store: content_fingerprint tells drafts apart by what they say") {
  notify::Notification base = to("u");
  base.body = "b";
  base.data = {{"k", 1}, {"j", "x"}};
  const auto fp = notify::content_fingerprint(base);
  auto same = base;
  same.user_id = "someone else";  // the recipient, ids and times are not content
  same.id = "42";
  same.created_at = "2026-11-30T10:00:00.000Z";
  same.idempotency_key = "k";
  same.data = nlohmann::json::parse(R"({"j":"x","k":1})");
  CHECK(notify::content_fingerprint(same) == fp);
  std::string notify::Notification::*fields[] = {
      &notify::Notification::type,        &notify::Notification::title,
      &notify::Notification::body,        &notify::Notification::actor_id,
      &notify::Notification::entity_type, &notify::Notification::entity_id,
      &notify::Notification::action_url,  &notify::Notification::image_url};
  for (auto field : fields) {
    auto changed = base;
    changed.*field += "!";
    CHECK(notify::content_fingerprint(changed) != fp);
  }
  auto data = base;
  data.data["k"] = 2;
  CHECK(notify::content_fingerprint(data) != fp);
  // Fields do not run together: "ab" + "c" is not "a" + "bc".
  auto left = base, right = base;
  left.title = "ab";
  left.body = "c";
  right.title = "a";
  right.body = "bc";
  CHECK(notify::content_fingerprint(left) != notify::content_fingerprint(right));
  auto null_data = base, empty_data = base;
  null_data.data = nullptr;
  empty_data.data = nlohmann::json::object();
  CHECK(notify::content_fingerprint(null_data) == notify::content_fingerprint(empty_data));
}

TEST_CASE("store: parse_sequence") {
  CHECK(notify::parse_sequence("42") == 42u);
  CHECK(notify::parse_sequence("0") == 0u);
  CHECK_FALSE(notify::parse_sequence(""));
  CHECK_FALSE(notify::parse_sequence("-1"));
  CHECK_FALSE(notify::parse_sequence("4a"));
  CHECK_FALSE(notify::parse_sequence("99999999999999999999999"));
}

TEST_CASE("memory store: a cursor from an earlier process is refused, however many ids follow") {
  std::uint64_t cursor = 0;
  {
    notify::MemoryStore before;  // the process before a restart
    for (int i = 0; i < 3; ++i)
      before.append(to("u"));
    cursor = before.head();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a restart takes a while
  notify::MemoryStore after;
  const auto start = after.head();
  CHECK(start > cursor);
  for (int i = 0; i < 5; ++i)
    CHECK(std::stoull(after.append(to("u")).id) > cursor);
  CHECK_FALSE(after.resume("u", cursor, 10, 100));        // notifications:reset, not a resume
  const auto everything = after.resume("u", 0, 10, 100);  // a client that has nothing yet
  REQUIRE(everything);
  CHECK(everything->missed.size() == 5);
  const auto from_start = after.resume("u", start, 10, 100);
  REQUIRE(from_start);
  CHECK(from_start->missed.size() == 5);

  notify::MemoryStoreOptions plain;
  plain.seed_from_clock = false;
  notify::MemoryStore counting(plain);
  CHECK(counting.head() == 0);
  CHECK(counting.append(to("u")).id == "1");
}
