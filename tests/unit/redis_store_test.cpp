// RedisStore's own cases (the Store contract cases run on it in store_contract_test.cpp),
// and the pure parts of notify::redis: URLs, escaping, the bus message format.
#include "redis_fixtures.hpp"
#include "step_relay.hpp"

#ifdef NOTIFY_TEST_WITH_REDIS

#include <notify/error.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string_view>
#include <thread>

using namespace redistest;
using notify::RedisStore;
using notify::RedisStoreOptions;

namespace {

RedisStoreOptions store_options(const testredis::RedisServer& server, const std::string& prefix) {
  RedisStoreOptions o;
  o.redis = options_for(server, prefix);
  o.seed_from_clock = false;
  return o;
}

}  // namespace

TEST_CASE("redis store: the idempotency window is checked") {
  RedisStoreOptions o;
  o.idempotency_window = notify::max_idempotency_window;
  CHECK_NOTHROW(RedisStore{o});  // connects on first use
  o.idempotency_window = std::chrono::milliseconds(0);
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
  o.idempotency_window = notify::max_idempotency_window + std::chrono::milliseconds(1);
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
}

TEST_CASE("redis: URLs") {
  auto o = notify::parse_redis_url("redis://cache.internal:6380/2");
  CHECK(o.host == "cache.internal");
  CHECK(o.port == 6380);
  CHECK(o.db == 2);
  o = notify::parse_redis_url("redis://127.0.0.1");
  CHECK(o.port == 6379);
  CHECK(o.db == 0);
  o = notify::parse_redis_url("redis://app:s%40cret@[::1]:7000");
  CHECK(o.host == "::1");
  CHECK(o.port == 7000);
  CHECK(o.user == "app");
  CHECK(o.password == "s@cret");
  CHECK(notify::describe(o) == "[::1]:7000/0");
  o = notify::parse_redis_url("redis://:pw@h");
  CHECK(o.user.empty());
  CHECK(o.password == "pw");
  CHECK_THROWS_AS(notify::parse_redis_url("http://h"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis://h:0"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis://h:x"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis://h/db"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis://:6379"), std::invalid_argument);
}

TEST_CASE("redis: sentinel URLs") {
  auto o = notify::parse_redis_url("redis-sentinel://app:pw@s1:5000,[::1],s3/main%2Da/3");
  REQUIRE(o.sentinels.size() == 3);
  CHECK(o.sentinels[0].host == "s1");
  CHECK(o.sentinels[0].port == 5000);
  CHECK(o.sentinels[1].host == "::1");
  CHECK(o.sentinels[1].port == 26379);
  CHECK(o.sentinels[2].host == "s3");
  CHECK(o.sentinel_master == "main-a");
  CHECK(o.db == 3);
  CHECK(o.user == "app");
  CHECK(o.password == "pw");
  CHECK(notify::describe(o) == "main-a via s1:5000,[::1]:26379,s3:26379/3");
  // A plain URL parsed over it leaves no sentinel behind.
  o = notify::parse_redis_url("redis://h:7000", o);
  CHECK(o.sentinels.empty());
  CHECK(o.host == "h");
  CHECK_THROWS_AS(notify::parse_redis_url("redis-sentinel://s1"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis-sentinel://s1/"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis-sentinel://s1,/m"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis-sentinel://s1:0/m"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis-sentinel://s1/m/x"), std::invalid_argument);
}

TEST_CASE("redis: user ids are escaped in key and channel names") {
  CHECK(notify::redis_escape("alice_1.x-y") == "alice_1.x-y");
  CHECK(notify::redis_escape("a b:*?[]") == "a%20b%3A%2A%3F%5B%5D");
  CHECK(notify::redis_escape("%") == "%25");
  CHECK(notify::redis_escape("\xC3\xA9") == "%C3%A9");
  notify::RedisBus bus;
  CHECK(bus.user_channel("x:*") == "notify:u:x%3A%2A");
  CHECK(bus.broadcast_channel() == "notify:broadcast");
}

TEST_CASE("redis: the bus message format round-trips one event") {
  auto event = notify::Event::message("notification", "42", R"({"id":"42","title":"\n"})", 42);
  notify::Envelope user{"a b", false, event};
  const auto text = notify::encode_bus_message(user);
  CHECK(text.find('\n') == text.find("}\n") + 1);
  auto back = notify::decode_bus_message(text);
  REQUIRE(back);
  CHECK(back->user == "a b");
  CHECK_FALSE(back->broadcast);
  CHECK(back->event->type() == "notification");
  CHECK(back->event->id() == "42");
  CHECK(back->event->seq() == 42);
  CHECK(back->event->data() == event->data());

  auto read =
      notify::Event::message("notification:read", "", R"({"ids":[]})", 18446744073709551615ull);
  auto b = notify::decode_bus_message(notify::encode_bus_message({"", true, read}));
  REQUIRE(b);
  CHECK(b->broadcast);
  CHECK(b->event->id().empty());
  CHECK(b->event->seq() == 18446744073709551615ull);
  CHECK_FALSE(b->every_instance);

  // A user's message for every instance keeps its user: an older reader, which ignores "e",
  // still takes it for that user's.
  auto end = notify::Event::message("session:end", "", R"({"reason":"x"})", 0);
  const auto every_text = notify::encode_bus_message({"a b", false, end, true});
  CHECK(every_text.find(R"("e":true)") != std::string::npos);
  auto every = notify::decode_bus_message(every_text);
  REQUIRE(every);
  CHECK(every->user == "a b");
  CHECK_FALSE(every->broadcast);
  CHECK(every->every_instance);
  CHECK_FALSE(back->every_instance);
  CHECK_FALSE(every->replayed_sent_at);

  // One sent again says when it was first sent, in whole milliseconds rounded up.
  notify::Envelope again{"a b", false, end, true};
  again.replayed_sent_at = std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1764460800123) + std::chrono::microseconds(1));
  const auto again_text = notify::encode_bus_message(again);
  CHECK(again_text.find(R"("at":1764460800124)") != std::string::npos);
  auto again_back = notify::decode_bus_message(again_text);
  REQUIRE(again_back);
  REQUIRE(again_back->replayed_sent_at);
  CHECK(again_back->replayed_sent_at->time_since_epoch() ==
        std::chrono::milliseconds(1764460800124));
  for (const char* at : {"-1", "1.5", "\"1\"", "99999999999999999999", "9223372036854775807"}) {
    const std::string header = R"({"t":"session:end","u":"a","e":true,"at":)" + std::string(at);
    CAPTURE(header);
    CHECK_FALSE(notify::decode_bus_message(header + "}\n{}"));
  }
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x","u":"a","at":5})"
                                         "\n{}"));  // only for every instance

  // A bus names itself in its session ends ("o"), to know its own when Redis hands them back
  // (its test: "a session begun where end_sessions() was called..."); readers accept it.
  CHECK(notify::decode_bus_message(R"({"t":"x","u":"a","e":true,"o":"0123456789abcdef"})"
                                   "\n{}"));
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x","u":"a","e":true,"o":1})"
                                         "\n{}"));
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x","u":"a","o":"x"})"
                                         "\n{}"));

  CHECK_FALSE(notify::decode_bus_message("no header"));
  CHECK_FALSE(notify::decode_bus_message("[]\n{}"));
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x"})"
                                         "\n{}"));  // no user
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x","u":"a b"})"
                                         "\n{}"));  // not escaped
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x","u":"a","s":"-1"})"
                                         "\n{}"));
  // What an event cannot carry is malformed, not an exception (found by fuzzing).
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"a\nb","u":"a"})"
                                         "\n{}"));
  CHECK_FALSE(notify::decode_bus_message(R"({"t":"x","i":"1\r","u":"a"})"
                                         "\n{}"));
}

TEST_CASE("redis store: options are checked") {
  RedisStoreOptions o;
  o.max_per_user = 0;
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
  o = {};
  o.redis.host.clear();
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
  // With sentinels the host is not used, but the primary's name is needed.
  o.redis.sentinels = {{"127.0.0.1", 26379}};
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
  notify::RedisBusOptions b;
  b.redis = o.redis;
  CHECK_THROWS_AS(notify::RedisBus{b}, std::invalid_argument);
  o.redis.sentinel_master = "m";
  CHECK_NOTHROW(RedisStore{o});  // connects on first use
  o.redis.sentinels = {{"", 26379}};
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
}

TEST_CASE(
    "redis store: an unreachable Redis is an error, and the next call after it is back works") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  RedisStore store(store_options(server, "down:"));
  CHECK(store.append(draft("u")).id == "1");
  server.kill();
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(store.append(draft("u")), std::system_error);
  CHECK_THROWS_AS(store.head(), std::system_error);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  REQUIRE(server.start());
  CHECK(store.head() == 0);  // not appendonly: it came back empty
  CHECK(store.append(draft("u")).id == "1");
}

TEST_CASE("redis: AUTH with a password, and with an ACL user") {
  testredis::RedisServer server(false, {"--requirepass", "s3cret"});
  NOTIFY_REQUIRE_REDIS(server);
  auto options = store_options(server, "auth:");
  CHECK_THROWS_AS(RedisStore(options).head(), notify::RedisError);  // NOAUTH
  options.redis.password = "wrong";
  CHECK_THROWS_AS(RedisStore(options).head(), notify::RedisError);
  options.redis.password = "s3cret";
  RedisStore store(options);
  CHECK(store.append(draft("u")).id == "1");

  // An ACL user (Redis >= 6) for the bus.
  server.command("AUTH s3cret\r\nACL SETUSER app on >apppw ~* &* +@all");
  REQUIRE(eventually([&] { return server.command("AUTH app apppw").rfind("+OK", 0) == 0; }));
  notify::RedisBusOptions bus_options;
  bus_options.redis = options_for(server, "auth:");
  bus_options.redis.user = "app";
  bus_options.redis.password = "apppw";
  notify::RedisBus bus(bus_options);
  Recorder recorder;
  bus.start(recorder);
  CHECK(bus.state() == notify::BusState::connected);
  std::error_code ec;
  bus.publish({"u", false, notify::Event::message("x", "", "{}", 0)}, ec);
  CHECK_FALSE(ec);
  bus_options.redis.password = "nope";
  bus_options.on_error = [](std::string_view) {};
  notify::RedisBus refused(bus_options);
  Recorder other;
  refused.start(other);
  CHECK(refused.state() == notify::BusState::reconnecting);
}

TEST_CASE("redis store: concurrent instances keep ids unique and read counts exact") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  constexpr int instances = 4, per_instance = 50;
  std::vector<std::unique_ptr<RedisStore>> stores;
  for (int i = 0; i < instances; ++i)
    stores.push_back(std::make_unique<RedisStore>(store_options(server, "conc:")));
  std::mutex mutex;
  std::set<std::string> ids;
  std::vector<std::thread> threads;
  for (int i = 0; i < instances; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < per_instance; ++k) {
        auto n = stores[i]->append(draft("shared", std::to_string(k)));
        std::lock_guard lock(mutex);
        ids.insert(n.id);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  threads.clear();
  CHECK(ids.size() == instances * per_instance);
  CHECK(stores[0]->unread_count("shared") == instances * per_instance);

  // Every instance marks every id read at the same time: each id changes state once.
  std::atomic<int> changed{0};
  for (int i = 0; i < instances; ++i) {
    threads.emplace_back([&, i] {
      for (const auto& id : ids)
        changed += static_cast<int>(stores[i]->mark_read("shared", id).ids.size());
    });
  }
  for (auto& t : threads)
    t.join();
  CHECK(changed == instances * per_instance);
  CHECK(stores[1]->unread_count("shared") == 0);
  CHECK(stores[2]->mark_all_read("shared").ids.empty());
}

TEST_CASE("redis store: a clock-seeded sequence refuses cursors from before Redis lost its data") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  auto options = store_options(server, "seed:");
  options.seed_from_clock = true;
  RedisStore store(options);
  CHECK(store.head() == 0);
  const auto first = store.append(draft("alice", "a1"));
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto seq = std::stoull(first.id);
  CHECK(seq > static_cast<std::uint64_t>(now_us) - 60'000'000);
  CHECK(seq <= static_cast<std::uint64_t>(now_us) + 1);
  CHECK(store.resume("alice", seq, 10, 100));
  CHECK(store.resume("alice", 0, 10, 100));

  CHECK(server.command("FLUSHALL").rfind("+OK", 0) == 0);  // Redis came back empty
  const auto again = store.append(draft("alice", "a2"));
  CHECK(std::stoull(again.id) > seq);
  CHECK_FALSE(store.resume("alice", seq, 10, 100));  // a cursor of the lost history: reset
  CHECK(store.resume("alice", 0, 10, 100));
  CHECK(store.resume("alice", std::stoull(again.id), 10, 100));
}

TEST_CASE("redis store: a pipelined resume_many survives Redis forgetting its scripts") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  RedisStore store(store_options(server, "many:"));
  store.append(draft("alice", "a1"));
  std::vector<notify::ResumeQuery> queries(20, notify::ResumeQuery{"alice", 0});
  REQUIRE(store.resume_many(queries, 0, 100).size() == 20);    // the script is loaded now
  CHECK(server.command("SCRIPT FLUSH").rfind("+OK", 0) == 0);  // as after a restart
  const auto answers = store.resume_many(queries, 0, 100);
  REQUIRE(answers.size() == 20);
  for (const auto& a : answers) {
    REQUIRE(a);
    REQUIRE(a->missed.size() == 1);
    CHECK(a->missed[0].title == "a1");
  }
  CHECK(server.command("INFO commandstats").find("cmdstat_eval:calls=20") != std::string::npos);
}

TEST_CASE("redis store: mark_many is one transaction of two scripts, after Redis forgot them too") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  RedisStore store(store_options(server, "marks:"));
  const auto a1 = store.append(draft("alice", "a1")).id;
  const auto a2 = store.append(draft("alice", "a2")).id;
  const auto b1 = store.append(draft("bob", "b1")).id;
  const auto calls = [&](const std::string& command) {
    return info_number(server, "commandstats", "cmdstat_" + command + ":", "calls=");
  };
  const auto before = calls("exec");
  using Ids = std::vector<std::string>;
  const auto first = store.mark_many({{"alice", a1}, {"bob", std::nullopt}});
  REQUIRE(first.size() == 2);
  CHECK(first[0].ids == Ids{a1});
  CHECK(first[1].ids == Ids{b1});
  CHECK(first[1].seq == first[0].seq + 1);
  CHECK(calls("exec") == before + 1);

  CHECK(server.command("SCRIPT FLUSH").rfind("+OK", 0) == 0);  // as after a restart
  const auto evals = calls("eval");
  const auto second = store.mark_many({{"bob", b1}, {"alice", std::nullopt}, {"alice", a2}});
  REQUIRE(second.size() == 3);
  CHECK(second[0].ids.empty());
  CHECK(second[1].ids == Ids{a2});
  CHECK(second[1].unread_count == 0);
  CHECK(second[2].ids.empty());
  CHECK(calls("eval") == evals + 3);  // each sent again with its own script's source
  CHECK(store.unread_count("alice") == 0);
  CHECK(store.head() == second[1].seq);
}

TEST_CASE("redis store: calls wait while a restarted Redis loads its data") {
  testredis::RedisServer server(false, slow_load_options());
  NOTIFY_REQUIRE_REDIS(server);
  auto options = store_options(server, "loading:");
  options.redis.command_timeout = 60s;
  RedisStore store(options);
  const auto before = store.append(draft("alice", "before"));

  SlowRestart restart(server);
  const bool loading = restart.loading();
  std::vector<std::string> ids;
  if (loading) {
    // Refused while loading (the script cache is empty after it: EVALSHA, then EVAL).
    for (
        const auto& n : or_failed_check("append_all", [&] {
          return store.append_all({draft("alice", "a1"), draft("alice", "a2"), draft("bob", "b1")});
        }))
      ids.push_back(n.id);
  }
  REQUIRE(loading);
  REQUIRE(restart.started());
  REQUIRE(ids.size() == 3);
  CHECK(rejected_calls(server, "evalsha") >= 1);
  CHECK(stored_ids(store, "alice") == std::vector<std::string>{before.id, ids[0], ids[1]});
  CHECK(stored_ids(store, "bob") == std::vector<std::string>{ids[2]});
  CHECK(std::stoull(ids[0]) < std::stoull(ids[1]));
  CHECK(std::stoull(ids[1]) < std::stoull(ids[2]));
}

// A relay that, in the first pipeline of scripts after arm(), has another client's long
// script refuse the first one (BUSY: Redis answers other clients so once the script has run
// for busy-reply-threshold) and lets the second go on only once that script is killed (it
// writes nothing, so SCRIPT KILL may end it): a state that changes within a pipeline. Old
// stores ran the second and third scripts and sent the first one again, after them.
struct BusyMidPipeline {
  const testredis::RedisServer& server;
  std::atomic<bool> armed{false};
  std::atomic<bool> busy_seen{false};  // another client was answered BUSY before the first
  std::atomic<bool> ended{false};      // the long script was killed between the two
  int scripts = 0;                     // the relay's thread only
  LongScript busy{server};             // the other client's script
  test::StepRelay relay{server.port(),
                        [this](const test::StepRelay::Command& command) { step(command); }};

  explicit BusyMidPipeline(const testredis::RedisServer& s) : server(s) {}

  // A store that reaches Redis through the relay.
  RedisStoreOptions options(const std::string& prefix) const {
    auto o = store_options(server, prefix);
    o.redis.port = relay.port();
    o.redis.command_timeout = 10s;
    return o;
  }

  bool arm() {
    if (server.command("CONFIG SET busy-reply-threshold 50") != "+OK\r\n")
      return false;
    armed = true;
    return true;
  }

 private:
  void step(const test::StepRelay::Command& command) {
    if (!armed || ended || command.empty() || (command[0] != "EVALSHA" && command[0] != "EVAL"))
      return;
    if (++scripts == 1) {
      // Once another client is answered BUSY, so is the first script.
      busy_seen = busy.start();
      return;
    }
    ended = busy.kill();
  }
};

TEST_CASE("redis store: a pipeline refused in part is sent again whole, its drafts in order") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  BusyMidPipeline redis(server);
  RedisStore store(redis.options("busy:"));
  const auto before = store.append(draft("alice", "before"));  // the script is loaded
  REQUIRE(redis.arm());

  const auto stored = or_failed_check("append_all", [&] {
    return store.append_all({draft("alice", "a1"), draft("alice", "a2"), draft("bob", "b1")});
  });
  REQUIRE(redis.busy_seen);
  REQUIRE(redis.ended);
  REQUIRE(stored.size() == 3);
  CHECK(rejected_calls(server, "evalsha") >= 1);
  // One transaction: BUSY refused it whole, and it ran whole once the script was killed.
  const auto a1 = std::stoull(stored[0].id), a2 = std::stoull(stored[1].id),
             b1 = std::stoull(stored[2].id);
  CHECK(a1 < a2);
  CHECK(a2 < b1);
  CHECK(stored_ids(store, "alice") ==
        std::vector<std::string>{before.id, stored[0].id, stored[1].id});
  CHECK(stored_ids(store, "bob") == std::vector<std::string>{stored[2].id});
}

TEST_CASE("redis store: a publish_to refused in part reaches each connection in draft order") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  BusyMidPipeline redis(server);
  auto store = std::make_shared<RedisStore>(redis.options("busy-hub:"));
  store->append(draft("carol", "loads the script"));
  IoThread io;
  notify::NotificationHub hub(io.io.get_executor(), hub_options(), store);
  Client alice(io.io, hub, "alice");
  Client bob(io.io, hub, "bob");
  REQUIRE(eventually(
      [&] { return alice.of_type("init").size() == 1 && bob.of_type("init").size() == 1; }));
  REQUIRE(redis.arm());

  const auto ids = or_failed_check("publish_to", [&] {
    return hub.publish_to({"alice", "bob", "alice"}, draft("", "to three"));
  });
  REQUIRE(redis.busy_seen);
  REQUIRE(redis.ended);
  REQUIRE(ids.size() == 3);
  CHECK(std::stoull(ids[0]) < std::stoull(ids[1]));
  CHECK(std::stoull(ids[1]) < std::stoull(ids[2]));
  CHECK(eventually([&] { return alice.state().ids.size() == 2 && bob.state().ids.size() == 1; }));
  const auto a = alice.state();
  CHECK(a.ids == std::vector<std::string>{ids[0], ids[2]});
  CHECK(a.in_order);
  CHECK(a.duplicates == 0);
  CHECK(bob.state().ids == std::vector<std::string>{ids[1]});
  hub.stop();
}

TEST_CASE(
    "redis store: synchronous publishes during a stall fail together, not one after another") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  constexpr auto timeout = 2000ms;  // long enough for six threads to queue on a loaded machine
  auto options = store_options(server, "stall:");
  options.redis.command_timeout = timeout;
  SUBCASE("the hub orders the appends") {}
  SUBCASE("the store publishes its appends") {
    // No sequence lock: callers used to write in the call at once, each on a connection of
    // the pool (four) and with a timeout of its own.
    options.publish_appends = true;
  }
  auto store = std::make_shared<RedisStore>(options);
  IoThread io;
  notify::NotificationHub hub(io.io.get_executor(), hub_options(), store);
  hub.publish(draft("alice", "before"));  // the script is loaded

  // Redis holds every write from here: the store thread's call waits out its command
  // timeout, and the publishes made meanwhile queue behind it and go as one batch, which
  // waits out one more. (Each used to wait for the sequence lock and then for a timeout of
  // its own: the last of six failed after seven timeouts.)
  REQUIRE(server.command("CLIENT PAUSE 30000 WRITE") == "+OK\r\n");
  std::atomic<bool> held_failed{false};
  hub.async_publish(draft("alice", "held"),
                    [&](std::exception_ptr error, const std::string&) { held_failed = !!error; });
  const bool held = eventually([&] { return hub.metrics().publishes_pending == 0; }, 10s);
  constexpr std::size_t callers = 6;
  std::vector<long long> took_ms(callers);
  std::vector<int> failed(callers, 0);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < callers; ++i)
    threads.emplace_back([&, i] {
      const auto start = std::chrono::steady_clock::now();
      try {
        hub.publish(draft("alice", std::to_string(i)));
      } catch (const std::exception&) {  // one exception for all: not read on six threads
        failed[i] = 1;
      }
      took_ms[i] = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
    });
  // All six wait in the queue while the held call is in the store: the next batch takes them
  // all, one store call.
  const bool queued = eventually([&] { return hub.metrics().publishes_pending == callers; }, 10s);
  for (auto& t : threads)
    t.join();
  CHECK(server.command("CLIENT UNPAUSE") == "+OK\r\n");

  REQUIRE(held);
  CHECK(queued);
  CHECK(eventually([&] { return held_failed.load(); }));
  for (std::size_t i = 0; i < callers; ++i) {
    CAPTURE(i);
    CHECK(failed[i] == 1);
  }
  MESSAGE("each call failed after (ms): " << took_ms[0] << " " << took_ms[1] << " " << took_ms[2]
                                          << " " << took_ms[3] << " " << took_ms[4] << " "
                                          << took_ms[5] << " (command timeout 2000)");
  // Redis is back: the next publish goes through.
  const auto after =
      or_failed_check("publish", [&] { return hub.publish(draft("alice", "after")); });
  CHECK_FALSE(after.empty());
  hub.stop();
}

TEST_CASE("redis store: history is capped by age") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  auto options = store_options(server, "age:");
  options.max_age = std::chrono::seconds(1);
  RedisStore store(options);
  const auto old_one = store.append(draft("alice", "old"));
  store.append(notify::Notification{[] {
    notify::Notification b;
    b.broadcast = true;
    b.type = "system";
    b.title = "old broadcast";
    return b;
  }()});
  std::this_thread::sleep_for(1100ms);
  const auto fresh = store.append(draft("bob", "new"));
  CHECK(store.list("alice", false, 10).empty());
  CHECK(store.unread_count("alice") == 0);
  CHECK(store.list("bob", false, 10).size() == 1);
  CHECK_FALSE(store.resume("alice", 0, 10, 100));  // alice's history was cut
  CHECK_FALSE(store.resume("bob", 1, 10, 100));    // so were the broadcasts
  CHECK(store.resume("bob", 2, 10, 100));
  CHECK(store.mark_read("alice", old_one.id).ids.empty());
  CHECK(server.command("HLEN age:n") == ":1\r\n");  // the bodies went too
  CHECK(server.command("ZCARD age:ts") == ":1\r\n");
  (void)fresh;
}

TEST_CASE("redis store: user ids that are not key-safe stay apart") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  RedisStore store(store_options(server, "esc:"));
  store.append(draft("a:h", "one"));
  store.append(draft("a", "two"));
  store.append(draft("*", "three"));
  CHECK(store.list("a:h", false, 10).size() == 1);
  CHECK(store.list("a", false, 10).size() == 1);
  CHECK(store.list("*", false, 10).size() == 1);
  CHECK(store.list("?", false, 10).empty());
  CHECK(store.list("a:h", false, 10)[0].user_id == "a:h");
}

TEST_CASE(
    "redis store: append and append_all publish on the bus channel, in id order across instances") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const bool sharded : {false, true}) {
    CAPTURE(sharded);
    const std::string prefix = sharded ? "pubs:" : "pub:";
    notify::RedisBusOptions bus_options;
    bus_options.redis = options_for(server, prefix);
    bus_options.sharded = sharded;
    notify::RedisBus bus(bus_options);
    Recorder recorder;
    bus.start(recorder);
    REQUIRE(bus.state() == notify::BusState::connected);
    bus.subscribe("a b");
    bus.subscribe("c");
    // The subscriptions are confirmed asynchronously: wait until Redis counts them.
    REQUIRE(eventually([&] {
      const auto reply =
          server.command(std::string(sharded ? "PUBSUB SHARDNUMSUB " : "PUBSUB NUMSUB ") +
                         bus.user_channel("a b") + " " + bus.user_channel("c"));
      return reply.find(":1\r\n") != std::string::npos && reply.find(":0\r\n") == std::string::npos;
    }));

    auto options = store_options(server, prefix);
    options.publish_appends = true;
    options.sharded = sharded;
    std::vector<std::unique_ptr<RedisStore>> stores;
    for (int i = 0; i < 3; ++i)
      stores.push_back(std::make_unique<RedisStore>(options));
    CHECK(stores[0]->publishes_appends());
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&, i] {
        if (i == 2) {  // pipelined appends, 8 at a time
          for (int k = 0; k < 40; k += 8) {
            std::vector<notify::Notification> batch;
            for (int j = k; j < k + 8; ++j)
              batch.push_back(draft(j % 2 ? "a b" : "c", "n"));
            stores[i]->append_all(std::move(batch));
          }
          return;
        }
        for (int k = 0; k < 40; ++k)
          stores[i]->append(draft(k % 2 ? "a b" : "c", "n"));
      });
    }
    for (auto& t : threads)
      t.join();
    notify::Notification b;
    b.broadcast = true;
    b.type = "system";
    b.title = "all";
    const auto sent = stores[0]->append(b);
    REQUIRE(eventually([&] { return recorder.taken().size() == 121; }));
    const auto got = recorder.taken();
    std::uint64_t last = 0;
    bool ordered = true;
    for (const auto& e : got) {
      ordered = ordered && e.event->seq() > last;
      last = e.event->seq();
      CHECK(e.event->type() == "notification");
      CHECK(e.event->id() == std::to_string(e.event->seq()));
      const auto data = nlohmann::json::parse(e.event->data());
      CHECK(data.at("id") == e.event->id());
      CHECK(data.at("data") == nlohmann::json::object());
    }
    CHECK(ordered);
    CHECK(got.front().user != "");
    CHECK(got.back().broadcast);
    CHECK(got.back().event->id() == sent.id);
    const auto stored = stores[1]->list("c", false, 1);
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].data.is_null());  // stored as it went in
    bus.stop();
    CHECK(bus.state() == notify::BusState::stopped);
  }
}

#endif
