// Two notify-demo instances on one redis-server (--bus and --store redis://), as a fleet
// behind a load balancer would run them. The test starts its own redis-server.
#include "crash_check.hpp"
#include "support.hpp"

#ifdef NOTIFY_DEMO_WITH_REDIS

#include "../support/redis_cluster.hpp"
#include "../support/redis_server.hpp"

#include <thread>

using namespace itest;
using nlohmann::json;

namespace {

// True once Redis counts `n` subscribers on `channel` (the demo subscribes asynchronously).
bool wait_subscribers(const testredis::RedisServer& redis, const std::string& channel, int n) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  const std::string want = ":" + std::to_string(n) + "\r\n";
  while (Clock::now() < deadline) {
    if (redis.command("PUBSUB NUMSUB " + channel).find(want) != std::string::npos)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Redis counts a subscriber (above) a little before the instance reads the confirmation. A
// notification stored in between reaches the stream from the store when the confirmation is
// read, followed by the authoritative unread count, and again live, which the stream drops
// as already sent. This expects a `type` event, past one such count: the stream has been sent
// `unread` unread notifications so far, and the count must say so.
SseEvent expect_past_repair(SseStream& stream, const std::string& type, int unread) {
  auto e = stream.next();
  REQUIRE(e.has_value());
  // A read's own event names the notifications it changed; a repair's count names none.
  if (e->type == "notification:read" && e->json().at("ids").empty()) {
    CHECK(e->json() == json({{"ids", json::array()}, {"unreadCount", unread}}));
    e = stream.next();
    REQUIRE(e.has_value());
  }
  REQUIRE(e->type == type);
  return std::move(*e);
}

}  // namespace

TEST_CASE("redis fleet: an instance killed while publishing loses no acknowledged notification") {
  testredis::RedisServer redis;
  if (!redis.available()) {
    MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)");
    return;
  }
  check_kill_loses_nothing(unbatched({"--bus", redis.url(), "--store", redis.url() + "/1"}));
}

TEST_CASE("redis fleet: a notification POSTed on A reaches a stream on B, and reads sync back") {
  testredis::RedisServer redis;
  if (!redis.available()) {
    MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)");
    return;
  }
  // The bus on the first io thread (the demo's default) and on a thread of its own.
  for (const std::string bus_thread : {"io", "own"}) {
    CAPTURE(bus_thread);
    const std::string user = "fleet-" + bus_thread;
    const auto args = unbatched(
        {"--bus", redis.url(), "--store", redis.url() + "/1", "--bus-thread", bus_thread});
    DemoProcess a(args);
    DemoProcess b(args);
    SseStream on_b(b.port(), SseStream::target_for(user));
    SseStream on_a(a.port(), SseStream::target_for(user));
    on_b.expect("init");
    on_a.expect("init");
    REQUIRE(wait_subscribers(redis, "notify:u:" + user, 2));

    const std::string n1 = publish(a.port(), user, "posted on A");
    const std::string n2 = publish(b.port(), user, "posted on B");
    for (auto* s : {&on_b, &on_a}) {
      CHECK(expect_past_repair(*s, "notification", 0).id == n1);
      CHECK(expect_past_repair(*s, "notification", 1).id == n2);
    }

    // A read on A: B's stream gets notification:read with the authoritative count.
    const auto r =
        http_request(a.port(), "POST", "/api/notifications/" + n1 + "/read?user=" + user);
    REQUIRE(r.status == 200);
    CHECK(r.json() == json({{"ids", {n1}}, {"unreadCount", 1}}));
    for (auto* s : {&on_b, &on_a}) {
      const auto e = expect_past_repair(*s, "notification:read", 2);
      CHECK(e.json() == json({{"ids", {n1}}, {"unreadCount", 1}}));
    }

    // Both instances answer from the one store.
    const auto list =
        http_request(b.port(), "GET", "/api/notifications?user=" + user + "&unread=true");
    REQUIRE(list.status == 200);
    CHECK(ids_of(list.json().at("notifications")) == std::vector<std::string>{n2});

    // Read all on B reaches A's stream; a client of B resumes on A.
    const auto all = http_request(b.port(), "POST", "/api/notifications/read-all?user=" + user);
    REQUIRE(all.status == 200);
    CHECK(on_a.expect("notification:read").json().at("unreadCount") == 0);
    const std::string n3 = publish(a.port(), user, "while away");
    CHECK(on_b.expect("notification:read").json().at("unreadCount") == 0);
    CHECK(on_b.expect("notification").id == n3);
    SseStream resumed(a.port(), SseStream::target_for(user), {{"Last-Event-ID", n2}});
    const auto init = resumed.expect("init");
    CHECK(resumed.expect("notification").id == n3);
    (void)init;

    // Ending the user's sessions on B ends every stream of the user, on both instances.
    CHECK(on_a.expect("notification").id == n3);
    const auto end =
        http_request(b.port(), "POST", "/api/sessions/end?user=" + user, R"({"reason":"revoked"})");
    REQUIRE(end.status == 200);
    for (auto* s : {&on_b, &on_a, &resumed}) {
      CHECK(s->expect("session:end").json() == json({{"reason", "revoked"}}));
      CHECK(s->wait_eof(std::chrono::seconds(5)));
    }
  }
}

TEST_CASE("redis fleet: one Idempotency-Key posted to two instances at once is stored once") {
  testredis::RedisServer redis;
  if (!redis.available()) {
    MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)");
    return;
  }
  const auto args = unbatched({"--bus", redis.url(), "--store", redis.url() + "/1"});
  DemoProcess a(args);
  DemoProcess b(args);
  SseStream stream(b.port(), SseStream::target_for("kim"));
  stream.expect("init");
  REQUIRE(wait_subscribers(redis, "notify:u:kim", 1));

  // Each key goes to both instances from two threads at once, as a retry that raced the
  // first attempt would: one of the two stores, the other gets its id.
  constexpr int keys = 20;
  std::vector<std::string> from_a(keys), from_b(keys);
  const auto post_all = [&](std::uint16_t port, std::vector<std::string>& ids) {
    for (int i = 0; i < keys; ++i) {
      const json body = {{"userId", "kim"}, {"type", "order"}, {"title", std::to_string(i)}};
      const auto r = http_request(
          port, "POST", "/api/notifications", body.dump(),
          {{"Content-Type", "application/json"}, {"Idempotency-Key", "race-" + std::to_string(i)}});
      ids[i] = r.status == 202 ? r.json().at("id").get<std::string>() : "status " + r.head;
    }
  };
  std::thread on_a([&] { post_all(a.port(), from_a); });
  post_all(b.port(), from_b);
  on_a.join();
  CHECK(from_a == from_b);

  const auto last = publish(a.port(), "kim", "last");
  std::vector<std::string> delivered;
  while (true) {
    const auto e = expect_past_repair(stream, "notification", static_cast<int>(delivered.size()));
    if (*e.id == last)
      break;
    delivered.push_back(*e.id);
    REQUIRE(delivered.size() <= keys);
  }
  CHECK(delivered == from_b);  // each once, in the order the keys were first stored
  const auto list = http_request(a.port(), "GET", "/api/notifications?user=kim&limit=100");
  REQUIRE(list.status == 200);
  CHECK(list.json().at("notifications").size() == keys + 1);
}

TEST_CASE("redis fleet: two demos on a Redis Cluster (redis-cluster://) serve one user") {
  // The demo gives its keys and channels the hash tag {notify}; it is told of a node that
  // does not serve that slot.
  testredis::RedisCluster cluster("{notify}", false);
  if (!cluster.available()) {
    MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)");
    return;
  }
  auto& primary = cluster.node(cluster.owner());
  const auto url = std::string("redis-cluster://:") + testredis::RedisCluster::password +
                   "@127.0.0.1:" + std::to_string(cluster.node((cluster.owner() + 1) % 3).port());
  const auto args = unbatched({"--bus", url, "--store", url});
  DemoProcess a(args);
  DemoProcess b(args);
  const std::string user = "clustered";
  SseStream on_b(b.port(), SseStream::target_for(user));
  on_b.expect("init");
  REQUIRE(wait_subscribers(primary, "{notify}:u:" + user, 1));
  const std::string n1 = publish(a.port(), user, "posted on A");
  CHECK(on_b.expect("notification").id == n1);
  const auto list = http_request(b.port(), "GET", "/api/notifications?user=" + user);
  REQUIRE(list.status == 200);
  CHECK(ids_of(list.json().at("notifications")) == std::vector<std::string>{n1});
  CHECK(primary.command("EXISTS {notify}:u:" + user + ":h") == ":1\r\n");
  const auto end =
      http_request(a.port(), "POST", "/api/sessions/end?user=" + user, R"({"reason":"revoked"})");
  REQUIRE(end.status == 200);
  CHECK(on_b.expect("session:end").json() == json({{"reason", "revoked"}}));
  CHECK(on_b.wait_eof(std::chrono::seconds(5)));
}

TEST_CASE(
    "redis demo: with --wait-replicas a publish is answered 503 until a replica has it, then "
    "202") {
  testredis::RedisServer primary(false, {"--repl-diskless-sync-delay", "0"});
  if (!primary.available()) {
    MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)");
    return;
  }
  DemoProcess demo(unbatched({"--store", primary.url(), "--wait-replicas", "1"}));
  const auto refused = post_notification(
      demo.port(), {{"userId", "durable"}, {"type", "comment"}, {"title", "no replica yet"}});
  CHECK(refused.status == 503);
  CHECK(refused.json().at("error").get<std::string>().find("reached 0 of the 1 replicas") !=
        std::string::npos);

  testredis::RedisServer replica(false,
                                 {"--replicaof", "127.0.0.1", std::to_string(primary.port())});
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (primary.command("INFO replication").find("state=online") == std::string::npos &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // The demo waits 1 s for the replica; a loaded machine may take longer, and each refused
  // publish is stored all the same.
  std::size_t published = 1;
  HttpResponse accepted;
  deadline = Clock::now() + std::chrono::seconds(30);
  do {
    accepted = post_notification(
        demo.port(), {{"userId", "durable"}, {"type", "comment"}, {"title", "replicated"}});
    ++published;
  } while (accepted.status == 503 && Clock::now() < deadline);
  REQUIRE(accepted.status == 202);
  const std::string id = accepted.json().at("id").get<std::string>();
  CHECK(replica.command("HEXISTS notify:n " + id) == ":1\r\n");
  // The refused publishes were stored on the primary all the same (the answer said so).
  const auto list = http_request(demo.port(), "GET", "/api/notifications?user=durable");
  REQUIRE(list.status == 200);
  CHECK(list.json().at("notifications").size() == published);
}

// The demo writes a Redis store from the hub's store thread (async_publish): a failure
// there must still reach the request that waits for it.
TEST_CASE(
    "redis demo: a publish or read while Redis is away is answered 503, a stream is told to come "
    "back, and all works once Redis is back") {
  testredis::RedisServer redis(/*appendonly=*/true);
  if (!redis.available()) {
    MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)");
    return;
  }
  DemoProcess demo(unbatched({"--store", redis.url() + "/2"}));
  const std::string before = publish(demo.port(), "away", "before");

  redis.kill();
  const json draft = {{"userId", "away"}, {"type", "comment"}, {"title", "while away"}};
  const auto refused = post_notification(demo.port(), draft);
  CHECK(refused.status == 503);
  const std::string message = refused.json().at("error").get<std::string>();
  CHECK(message.rfind("publish failed: ", 0) == 0);
  const auto unread =
      http_request(demo.port(), "POST", "/api/notifications/" + before + "/read?user=away");
  CHECK(unread.status == 503);
  CHECK(unread.json().at("error").get<std::string>().rfind("read failed: ", 0) == 0);
  const auto listed = http_request(demo.port(), "GET", "/api/notifications?user=away");
  CHECK(listed.status == 503);
  CHECK(listed.json().at("error").get<std::string>().rfind("read failed: ", 0) == 0);
  {
    // No `init` can be read: the stream starts and ends with a comment, so that EventSource
    // reconnects after its retry delay (an error status would make it give up).
    SseStream stream(demo.port(), SseStream::target_for("away"));
    CHECK(stream.status() == 200);
    CHECK(stream.wait_eof(std::chrono::seconds(5)));
    CHECK(stream.comments() == 1);
    CHECK(stream.retry() == 2000);
    CHECK_FALSE(stream.next(std::chrono::milliseconds(0)));
  }

  REQUIRE(redis.start());
  HttpResponse accepted;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  do {  // the store reconnects on its next use
    accepted = post_notification(demo.port(),
                                 {{"userId", "away"}, {"type", "comment"}, {"title", "after"}});
  } while (accepted.status != 202 && Clock::now() < deadline);
  REQUIRE(accepted.status == 202);
  const std::string after = accepted.json().at("id").get<std::string>();

  const auto list = http_request(demo.port(), "GET", "/api/notifications?user=away");
  REQUIRE(list.status == 200);
  CHECK(ids_of(list.json().at("notifications")) == std::vector<std::string>{after, before});
  CHECK(list.json().at("unreadCount") == 2);
  SseStream stream(demo.port(), SseStream::target_for("away"));
  const auto init = stream.expect("init");
  CHECK(ids_of(init.json().at("notifications")) == std::vector<std::string>{after, before});
}

#endif
