#include <notify/hub.hpp>
#include <notify/callback_transport.hpp>
#include <notify/memory_store.hpp>
#include <notify/sse_sink.hpp>

#include "fixtures.hpp"
#include "forwarding_store.hpp"
#include "lossy_bus.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

using nlohmann::json;
using notify::Notification;
using notify::NotificationHub;

namespace {

using Client = test::SseClient;
using test::draft;
using test::no_batching;

bool wait_count(asio::io_context& io, const Client& c, std::size_t n) {
  return test::run_until(io, [&] { return c.count() >= n; });
}

// `count` connections spread over `users` users ("user0", ...), each with its init.
std::vector<std::unique_ptr<Client>> connected(asio::io_context& io, NotificationHub& hub,
                                               int count, int users) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < count; ++i)
    clients.push_back(std::make_unique<Client>(io, hub, "user" + std::to_string(i % users)));
  REQUIRE(test::run_until(io, [&] {
    return std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->count() >= 1; });
  }));
  return clients;
}

}  // namespace

TEST_CASE("hub: init first, with the unread snapshot newest first and the count") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  hub.publish(draft("alice", "one"));
  hub.publish(draft("alice", "two"));
  const auto last = hub.publish(draft("bob", "other"));
  Client c(io, hub, "alice");
  REQUIRE(wait_count(io, c, 1));
  const auto bytes = c.transport->bytes();
  CHECK(bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  auto e = c.events();
  CHECK(e[0].type == "init");
  CHECK(e[0].id == last);
  auto data = json::parse(e[0].data);
  CHECK(data["unreadCount"] == 2);
  REQUIRE(data["notifications"].size() == 2);
  CHECK(data["notifications"][0]["title"] == "two");
  CHECK(data["notifications"][1]["title"] == "one");
}

TEST_CASE("hub: every tab of a user gets a notification, other users do not") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client tab1(io, hub, "alice"), tab2(io, hub, "alice"), bob(io, hub, "bob");
  REQUIRE(test::run_until(io, [&] { return tab1.count() && tab2.count() && bob.count(); }));
  const auto id = hub.publish(draft("alice", "hello"));
  REQUIRE(wait_count(io, tab1, 2));
  REQUIRE(wait_count(io, tab2, 2));
  for (const auto* c : {&tab1, &tab2}) {
    auto n = c->of_type("notification");
    REQUIRE(n.size() == 1);
    CHECK(n[0].id == id);
    CHECK(json::parse(n[0].data)["title"] == "hello");
    CHECK(json::parse(n[0].data)["userId"] == "alice");
  }
  io.run_for(std::chrono::milliseconds(50));
  CHECK(bob.of_type("notification").empty());
  CHECK(hub.connection_count() == 3);
  CHECK(hub.connection_count("alice") == 2);
}

TEST_CASE("hub: publish_to and broadcast") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client a(io, hub, "a"), b(io, hub, "b"), c(io, hub, "c");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count() && c.count(); }));
  const auto ids = hub.publish_to({"a", "b"}, draft("", "to two"));
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] != ids[1]);
  const auto bid = hub.broadcast(draft("", "to all"));
  REQUIRE(wait_count(io, a, 3));
  REQUIRE(wait_count(io, b, 3));
  REQUIRE(wait_count(io, c, 2));
  CHECK(a.events()[1].id == ids[0]);
  CHECK(b.events()[1].id == ids[1]);
  for (const auto* x : {&a, &b, &c}) {
    CHECK(x->events().back().id == bid);
    CHECK(json::parse(x->events().back().data)["broadcast"] == true);
  }
  CHECK(hub.unread_count("c") == 1);
}

TEST_CASE("hub: resume replays exactly what was missed, then live") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  std::string cursor;
  {
    Client first(io, hub, "alice");
    hub.publish(draft("alice", "1"));
    cursor = hub.publish(draft("alice", "2"));
    REQUIRE(wait_count(io, first, 3));
    first.sink->close();
    REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  }
  const auto m1 = hub.publish(draft("alice", "3"));
  hub.publish(draft("bob", "not mine"));
  const auto m2 = hub.publish(draft("alice", "4"));
  Client again(io, hub, "alice", cursor);
  const auto live = hub.publish(draft("alice", "5"));
  REQUIRE(wait_count(io, again, 4));
  io.run_for(std::chrono::milliseconds(30));
  auto e = again.events();
  REQUIRE(e.size() == 4);
  CHECK(e[0].type == "init");
  auto init = json::parse(e[0].data);
  CHECK(init["unreadCount"] == 2);  // the state at the cursor: "1" and "2"
  CHECK(init["notifications"].size() == 2);
  CHECK(e[1].id == m1);
  CHECK(e[2].id == m2);
  CHECK(e[3].id == live);
  for (std::size_t i = 1; i < e.size(); ++i)
    CHECK(e[i].type == "notification");
}

TEST_CASE("hub: an unknown or too old cursor gets notifications:reset with a fresh snapshot") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  const auto first = hub.publish(draft("alice", "1"));
  for (const std::string cursor : {"999", "abc", "-1", "1\n2"}) {
    CAPTURE(cursor);
    Client c(io, hub, "alice", cursor);
    REQUIRE(wait_count(io, c, 1));
    auto e = c.events();
    CHECK(e[0].type == "notifications:reset");
    CHECK(e[0].id == first);
    CHECK(json::parse(e[0].data)["unreadCount"] == 1);
  }
  CHECK(hub.metrics().resets_unknown_cursor == 4);
}

TEST_CASE("hub: what a connection is first sent stays within max_prime_bytes") {
  asio::io_context io;
  auto options = no_batching();
  options.max_prime_bytes = 64 * 1024;
  NotificationHub hub(io.get_executor(), options);
  std::vector<std::string> ids;  // ten of 16 KiB: four pass the budget
  for (int i = 0; i < 10; ++i) {
    auto n = draft("alice", std::to_string(i));
    n.body = std::string(16 * 1024, 'b');
    ids.push_back(hub.publish(n));
  }
  const auto listed = [](const test::SseEvent& e) {
    std::vector<std::string> out;
    const auto snapshot = json::parse(e.data);
    for (const auto& n : snapshot.at("notifications"))
      out.push_back(n.at("id"));
    return out;
  };
  SUBCASE("a snapshot lists the newest that fit and counts them all") {
    Client c(io, hub, "alice");
    REQUIRE(wait_count(io, c, 1));
    const auto e = c.events();
    CHECK(e[0].type == "init");
    CHECK(json::parse(e[0].data)["unreadCount"] == 10);
    CHECK(listed(e[0]) == std::vector<std::string>{ids[9], ids[8], ids[7]});
    CHECK(e[0].data.size() < options.max_prime_bytes);
  }
  SUBCASE("a replay within it is sent") {
    Client c(io, hub, "alice", ids[7]);
    REQUIRE(wait_count(io, c, 3));
    const auto e = c.events();
    CHECK(e[0].type == "init");
    CHECK(e[1].id == ids[8]);
    CHECK(e[2].id == ids[9]);
    CHECK(hub.metrics().resets_unknown_cursor == 0);
  }
  SUBCASE("a replay past it is a reset") {
    Client c(io, hub, "alice", ids[4]);  // five missed
    REQUIRE(wait_count(io, c, 1));
    io.run_for(std::chrono::milliseconds(30));
    const auto e = c.events();
    REQUIRE(e.size() == 1);
    CHECK(e[0].type == "notifications:reset");
    CHECK(e[0].id == ids[9]);
    CHECK(json::parse(e[0].data)["unreadCount"] == 10);
    CHECK(listed(e[0]).size() == 3);
    CHECK(hub.metrics().resets_unknown_cursor == 1);
  }
  options.max_prime_bytes = 64 * 1024 - 1;
  CHECK_THROWS_AS(NotificationHub(io.get_executor(), options), std::invalid_argument);
}

TEST_CASE("hub: no gap and no duplicate while publishing during attach") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  std::atomic<bool> go{true};
  std::vector<std::string> published;
  std::mutex m;
  std::thread publisher([&] {
    for (int i = 0; i < 300 && go; ++i) {
      auto id = hub.publish(draft("alice", std::to_string(i)));
      std::lock_guard lock(m);
      published.push_back(id);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  Client c(io, hub, "alice");
  publisher.join();
  REQUIRE(test::run_until(io, [&] {
    auto e = c.events();
    return !e.empty() && e.back().id == published.back();
  }));
  auto e = c.events();
  auto init = json::parse(e[0].data);
  std::vector<std::string> seen;
  for (auto it = init["notifications"].rbegin(); it != init["notifications"].rend(); ++it)
    seen.push_back((*it)["id"]);
  for (std::size_t i = 1; i < e.size(); ++i)
    seen.push_back(e[i].id);
  // init holds at most snapshot_limit, so compare the tail: the last seen must be contiguous.
  REQUIRE(seen.size() >= 50);
  const auto tail_start = published.size() - (seen.size());
  std::vector<std::string> expected(published.begin() + static_cast<long>(tail_start),
                                    published.end());
  // Only alice publishes, so the unread count at the cursor is how many were published up to it.
  const auto cursor = e[0].id.empty() ? 0 : std::stoull(e[0].id);
  CHECK(init["unreadCount"] ==
        std::count_if(published.begin(), published.end(),
                      [&](const std::string& id) { return std::stoull(id) <= cursor; }));
  CHECK(seen == expected);
}

TEST_CASE("hub: batching window sends one notifications:batch, resume still works") {
  asio::io_context io;
  notify::HubOptions options;
  options.batch_window = std::chrono::milliseconds(50);
  NotificationHub hub(io.get_executor(), options);
  Client c(io, hub, "alice");
  REQUIRE(wait_count(io, c, 1));
  const auto a = hub.publish(draft("alice", "a"));
  const auto b = hub.publish(draft("alice", "b"));
  const auto last = hub.publish(draft("alice", "c"));
  REQUIRE(wait_count(io, c, 2));
  auto e = c.events();
  CHECK(e[1].type == "notifications:batch");
  CHECK(e[1].id == last);
  auto items = json::parse(e[1].data);
  REQUIRE(items.size() == 3);
  CHECK(items[0]["id"] == a);
  CHECK(items[1]["id"] == b);
  CHECK(items[2]["id"] == last);

  const auto single = hub.publish(draft("alice", "alone"));
  REQUIRE(wait_count(io, c, 3));
  CHECK(c.events()[2].type == "notification");
  CHECK(c.events()[2].id == single);

  Client resumed(io, hub, "alice", b);
  REQUIRE(wait_count(io, resumed, 3));
  CHECK(resumed.events()[1].id == last);
  CHECK(resumed.events()[2].id == single);
}

TEST_CASE("hub: a batch flushed early does not hold up the batches of other users") {
  asio::io_context io;
  notify::HubOptions options;
  options.batch_window = std::chrono::milliseconds(300);
  NotificationHub hub(io.get_executor(), options);
  // What each connection was handed, in the order the hub wrote it.
  std::vector<std::pair<std::string, std::string>> written;
  auto connect = [&](const std::string& user) {
    auto t = std::make_shared<notify::CallbackTransport>(io.get_executor(),
                                                         [&written, user](std::string_view chunk) {
                                                           written.emplace_back(user, chunk);
                                                           return true;
                                                         });
    hub.attach(user, notify::SseSink::create(t));
  };
  connect("alice");
  connect("bob");
  REQUIRE(test::run_until(io, [&] { return written.size() == 2; }));
  const auto a1 = hub.publish(draft("alice", "a1"));
  const auto b1 = hub.publish(draft("bob", "b1"));
  hub.mark_read("alice", a1);  // flushes alice's batch now
  io.run_for(std::chrono::milliseconds(150));
  const auto a2 = hub.publish(draft("alice", "a2"));  // a batch of alice's due after bob's
  const auto position = [&](const std::string& user, const std::string& id) {
    for (std::size_t i = 0; i < written.size(); ++i) {
      if (written[i].first == user &&
          written[i].second.find("id: " + id + "\n") != std::string::npos)
        return i;
    }
    return written.size();
  };
  REQUIRE(test::run_until(io, [&] {
    return position("alice", a2) < written.size() && position("bob", b1) < written.size();
  }));
  CHECK(position("bob", b1) < position("alice", a2));
}

TEST_CASE("hub: what cannot be encoded is refused before it is stored or sent") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  // A `data` string or key that is not UTF-8 was stored, then failed every snapshot of the
  // user (of every user, as a broadcast): each attach threw.
  auto bad_value = draft("alice");
  bad_value.data = {{"k", std::string("\xff")}};
  auto bad_key = draft("alice");
  bad_key.data = {{std::string("\xfe"), 1}};
  for (const auto* n : {&bad_value, &bad_key}) {
    try {
      hub.publish(*n);
      FAIL("published data that is not UTF-8");
    } catch (const notify::ValidationError& e) {
      CHECK(std::string(e.what()).find("data: is not valid UTF-8") != std::string::npos);
    }
    CHECK_THROWS_AS(hub.broadcast(*n), notify::ValidationError);
  }
  // Ephemeral events: a type or data that is not UTF-8 is refused in the call (a type failed
  // at the first WebSocket connection, and the connections after it got nothing).
  CHECK_THROWS_AS(hub.send_to("alice",
                              "typ\xff"
                              "e",
                              {{"k", 1}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(hub.send_to("alice", "typing", {{"k", std::string("\xff")}}),
                  std::invalid_argument);
  Client c(io, hub, "alice"), bob(io, hub, "bob");
  REQUIRE(wait_count(io, c, 1));
  REQUIRE(wait_count(io, bob, 1));
  CHECK(json::parse(c.events()[0].data)["unreadCount"] == 0);
  CHECK(json::parse(bob.events()[0].data)["unreadCount"] == 0);
}

TEST_CASE("hub: read receipts reach every connection of the user with the count") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client tab1(io, hub, "alice"), tab2(io, hub, "alice"), bob(io, hub, "bob");
  const auto id1 = hub.publish(draft("alice", "1"));
  hub.publish(draft("alice", "2"));
  REQUIRE(wait_count(io, tab2, 3));
  auto r = hub.mark_read("alice", id1);
  CHECK(r.unread_count == 1);
  for (const auto* t : {&tab1, &tab2}) {
    REQUIRE(wait_count(io, *t, 4));
    auto read = t->of_type("notification:read");
    REQUIRE(read.size() == 1);
    auto d = json::parse(read[0].data);
    CHECK(d["ids"] == json::array({id1}));
    CHECK(d["unreadCount"] == 1);
    CHECK_FALSE(read[0].has_id);
  }
  hub.mark_all_read("alice");
  REQUIRE(wait_count(io, tab1, 5));
  CHECK(json::parse(tab1.events().back().data)["unreadCount"] == 0);
  CHECK(hub.mark_read("alice", id1).ids.empty());  // nothing changes: no event
  io.run_for(std::chrono::milliseconds(30));
  CHECK(tab1.count() == 5);
  CHECK(bob.of_type("notification:read").empty());
}

TEST_CASE("hub: a slow consumer is collapsed to a reset, others are not delayed") {
  asio::io_context io;
  auto options = no_batching();
  options.queue.max_events = 4;
  NotificationHub hub(io.get_executor(), options);
  Client slow(io, hub, "alice"), fast(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return slow.count() && fast.count(); }));
  slow.transport->stall();
  hub.publish(draft("alice", "first"));
  io.run_for(std::chrono::milliseconds(20));  // the slow one now has a write in flight
  std::string last;
  for (int i = 0; i < 20; ++i) {
    last = hub.publish(draft("alice", std::to_string(i)));
    io.run_for(std::chrono::milliseconds(2));  // the fast one keeps up
  }
  REQUIRE(test::run_until(io, [&] { return fast.count() == 22; }));
  CHECK(slow.count() == 1);
  slow.transport->release();
  REQUIRE(test::run_until(io, [&] { return !slow.of_type("notifications:reset").empty(); }));
  auto reset = slow.of_type("notifications:reset");
  REQUIRE(reset.size() == 1);
  CHECK(reset[0].id == last);
  CHECK(json::parse(reset[0].data)["unreadCount"] == 21);
  CHECK(hub.metrics().resyncs == 1);
  const auto after = hub.publish(draft("alice", "after"));
  REQUIRE(test::run_until(io, [&] { return slow.events().back().id == after; }));
}

TEST_CASE("hub: the disconnect policy closes a slow consumer") {
  asio::io_context io;
  auto options = no_batching();
  options.queue.max_events = 2;
  options.queue.overflow = notify::OverflowPolicy::disconnect;
  NotificationHub hub(io.get_executor(), options);
  Client slow(io, hub, "alice");
  REQUIRE(wait_count(io, slow, 1));
  slow.transport->stall();
  for (int i = 0; i < 5; ++i)
    hub.publish(draft("alice"));
  slow.transport->release();
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(slow.transport->closed());
  CHECK(hub.metrics().slow_consumer_disconnects == 1);
}

TEST_CASE("hub: connection limits are clear errors") {
  asio::io_context io;
  auto options = no_batching();
  options.max_connections = 3;
  options.max_connections_per_user = 2;
  NotificationHub hub(io.get_executor(), options);
  Client a1(io, hub, "a"), a2(io, hub, "a");
  auto t = std::make_shared<test::RecordingTransport>(io);
  std::error_code ec;
  hub.attach("a", notify::SseSink::create(t), {}, ec);
  CHECK(ec == notify::errc::too_many_user_connections);
  CHECK(ec.message() == "too many connections for this user");
  Client b(io, hub, "b");
  CHECK_THROWS_AS(Client(io, hub, "c"), std::system_error);
  hub.attach("c", notify::SseSink::create(t), {}, ec);
  CHECK(ec == notify::errc::too_many_connections);
  CHECK(hub.metrics().rejected_connections == 3);
  CHECK_THROWS_AS(hub.attach("", notify::SseSink::create(t)), std::invalid_argument);
  hub.attach("b", a1.sink, {}, ec);
  CHECK(ec == notify::errc::already_attached);
}

TEST_CASE("hub: a failing write closes that connection only") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client bad(io, hub, "alice"), good(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return bad.count() && good.count(); }));
  bad.transport->fail_at(bad.transport->writes() + 1);
  hub.publish(draft("alice"));
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 1; }));
  REQUIRE(wait_count(io, good, 2));
}

TEST_CASE("hub: heartbeats go to idle connections") {
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = std::chrono::seconds(1);
  NotificationHub hub(io.get_executor(), options);
  Client c(io, hub, "alice");
  REQUIRE(test::run_until(
      io, [&] { return !c.of_type("heartbeat").empty(); }, std::chrono::seconds(5)));
  // An event the page's script can see, with no id (the client's cursor stays), and the
  // interval in the init, so that a client can tell a quiet connection from a dead one.
  CHECK(c.transport->bytes().find("\nevent: heartbeat\ndata: {}\n\n") != std::string::npos);
  CHECK_FALSE(c.of_type("heartbeat").front().has_id);
  CHECK(json::parse(c.of_type("init").front().data)["heartbeatMs"] == 1000);
  CHECK_THROWS_AS(NotificationHub(io.get_executor(),
                                  [] {
                                    notify::HubOptions o;
                                    o.heartbeat_interval = std::chrono::milliseconds(500);
                                    return o;
                                  }()),
                  std::invalid_argument);
  CHECK_THROWS_AS(NotificationHub(io.get_executor(),
                                  [] {
                                    notify::HubOptions o;
                                    o.session_check_interval = std::chrono::milliseconds(5);
                                    return o;
                                  }()),
                  std::invalid_argument);
  for (const std::size_t depth : {std::size_t{0}, notify::default_max_data_depth + 1}) {
    notify::HubOptions o;
    o.validation.max_data_depth = depth;  // deeper data could not be read back from a store
    CHECK_THROWS_AS(NotificationHub(io.get_executor(), o), std::invalid_argument);
  }
  notify::HubOptions stricter;
  stricter.validation.max_data_depth = 2;
  NotificationHub strict(io.get_executor(), stricter);
  auto nested = draft("alice", "nested");
  nested.data = {{"a", {{"b", 1}}}};
  CHECK_NOTHROW(strict.publish(nested));
  nested.data = {{"a", {{"b", {1}}}}};
  CHECK_THROWS_WITH_AS(strict.publish(nested), "data: nested deeper than 2 levels",
                       notify::ValidationError);
}

TEST_CASE("hub: stop closes every connection and refuses more") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client a(io, hub, "a"), b(io, hub, "b");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count(); }));
  hub.stop();
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(a.transport->closed());
  CHECK(b.transport->closed());
  CHECK_THROWS_WITH_AS(hub.publish(draft("a")), "the notification hub is stopped",
                       std::system_error);
  auto t = std::make_shared<test::RecordingTransport>(io);
  std::error_code ec;
  hub.attach("a", notify::SseSink::create(t), {}, ec);
  CHECK(ec == notify::errc::hub_stopped);
  hub.stop();  // idempotent
}

TEST_CASE("hub: end_sessions ends every stream of the user with session:end, and only those") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client tab1(io, hub, "alice"), tab2(io, hub, "alice"), other(io, hub, "bob");
  REQUIRE(test::run_until(io, [&] { return tab1.count() && tab2.count() && other.count(); }));
  hub.end_sessions("alice", "logged_out");
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 1; }));
  for (auto* tab : {&tab1, &tab2}) {
    CHECK(tab->transport->closed());
    const auto events = tab->events();
    REQUIRE(events.size() == 2);
    CHECK(events[1].type == "session:end");
    CHECK(events[1].id.empty());  // not a cursor: a client resumes from where it was
    CHECK(events[1].data == R"({"reason":"logged_out"})");
  }
  CHECK_FALSE(other.transport->closed());
  hub.publish(draft("bob"));
  REQUIRE(wait_count(io, other, 2));
  CHECK(other.of_type("session:end").empty());
  CHECK(hub.metrics().sessions_ended == 2);
  CHECK(hub.metrics_text().find("\nnotify_sessions_ended_total 2\n") != std::string::npos);

  // A later connection of the user is not affected.
  Client again(io, hub, "alice");
  hub.publish(draft("alice"));
  REQUIRE(wait_count(io, again, 2));
  CHECK_FALSE(again.transport->closed());

  CHECK_THROWS_AS(hub.end_sessions("", "logged_out"), std::invalid_argument);
  for (const char* bad : {"", "Logged out", "a\"b", "\n", "x/y"})
    CHECK_THROWS_AS(hub.end_sessions("alice", bad), std::invalid_argument);
  CHECK_THROWS_AS(hub.end_sessions("alice", std::string(65, 'a')), std::invalid_argument);
  hub.end_sessions("nobody", std::string(64, 'a'));  // no connection: nothing happens
  hub.stop();
  CHECK_THROWS_AS(hub.end_sessions("alice", "logged_out"), std::system_error);
}

TEST_CASE("hub: end_sessions ends this instance's connections even when the bus loses it") {
  asio::io_context io;
  auto bus = std::make_shared<test::LossyBus>();
  NotificationHub hub(io.get_executor(), no_batching(), {}, bus);
  Client c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.count() == 1; }));
  bus->lose(true);
  hub.end_sessions("alice", "revoked");
  REQUIRE(test::run_until(io, [&] { return c.transport->closed(); }));
  CHECK(c.of_type("session:end").size() == 1);
  CHECK(hub.metrics().sessions_ended == 1);
  hub.stop();
}

TEST_CASE("hub: end_session_at ends a session at the first check past its deadline") {
  using namespace std::chrono_literals;
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = 1h;  // the deadlines have a timer of their own
  options.session_check_interval = 100ms;
  NotificationHub hub(io.get_executor(), options);
  Client expiring(io, hub, "alice"), later(io, hub, "alice"), moved(io, hub, "bob"),
      overdue(io, hub, "carol");
  const auto t0 = std::chrono::steady_clock::now();
  expiring.sink->end_session_at(t0 + 1500ms);
  later.sink->end_session_at(t0 + 1h);
  moved.sink->end_session_at(t0 + 500ms);
  moved.sink->end_session_at(t0 + 1h);  // a later call replaces the deadline
  overdue.sink->end_session_at(t0 - 1s);
  REQUIRE(test::run_until(
      io, [&] { return expiring.transport->closed(); }, std::chrono::seconds(5)));
  CHECK(std::chrono::steady_clock::now() - t0 >= 1500ms);  // never before its deadline
  CHECK(overdue.transport->closed());
  for (auto* c : {&expiring, &overdue}) {
    REQUIRE(c->of_type("session:end").size() == 1);
    CHECK(c->of_type("session:end")[0].data == R"({"reason":"expired"})");
  }
  io.run_for(300ms);  // more checks
  CHECK_FALSE(later.transport->closed());
  CHECK_FALSE(moved.transport->closed());
  CHECK(hub.metrics().sessions_ended == 2);
  hub.stop();
}

TEST_CASE("hub: a sink never attached answers end_session with the head and session:end") {
  asio::io_context io;
  auto transport = std::make_shared<test::RecordingTransport>(io);
  notify::SseOptions options;
  options.retry = std::chrono::milliseconds(2000);
  auto sink = notify::SseSink::create(transport, options);
  sink->end_session("token_expired");
  REQUIRE(test::run_until(io, [&] { return transport->closed(); }));
  const auto bytes = transport->bytes();
  CHECK(bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(bytes.find("retry: 2000\n") != std::string::npos);
  const std::string tail = "event: session:end\ndata: {\"reason\":\"token_expired\"}\n\n";
  REQUIRE(bytes.size() > tail.size());
  CHECK(bytes.substr(bytes.size() - tail.size()) == tail);
  CHECK_FALSE(sink->is_open());
  sink->end_session("token_expired");  // idempotent
  sink->close();
  CHECK_THROWS_AS(sink->end_session("Token expired"), std::invalid_argument);
}

TEST_CASE("hub: the hub's own event types cannot be sent by the host") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.count() == 1; }));
  for (const char* type : {"init", "notification", "notifications:batch", "notification:read",
                           "notifications:reset", "session:end"}) {
    CHECK_THROWS_AS(hub.send_to("alice", type, nlohmann::json::object()), std::invalid_argument);
    CHECK_THROWS_AS(NotificationHub::reply(c.sink, type, nlohmann::json::object()),
                    std::invalid_argument);
  }
  hub.send_to("alice", "typing", {{"from", "bob"}});
  REQUIRE(wait_count(io, c, 2));
  CHECK(c.events()[1].type == "typing");
  hub.stop();
}

TEST_CASE("hub: invalid drafts are refused with the field named") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  auto n = draft("alice");
  n.title.clear();
  CHECK_THROWS_WITH_AS(hub.publish(n), "title: missing", notify::ValidationError);
  CHECK_THROWS_WITH_AS(hub.publish(draft("")), "userId: missing", notify::ValidationError);
  CHECK(hub.metrics().publishes == 0);
}

TEST_CASE("hub: a publish that repeats an idempotency key gets the first id and is not sent") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client a(io, hub, "a"), b(io, hub, "b");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count(); }));
  auto shipped = draft("a", "shipped");
  shipped.idempotency_key = "order-42:shipped";
  const auto id = hub.publish(shipped);
  CHECK(hub.publish(shipped) == id);
  auto to_two = draft("", "to two");
  to_two.idempotency_key = "digest-7";
  const auto ids = hub.publish_to({"a", "b"}, to_two);
  CHECK(hub.publish_to({"b", "a"}, to_two) == std::vector<std::string>{ids[1], ids[0]});
  auto everyone = draft("", "to all");
  everyone.idempotency_key = "maintenance";
  const auto bid = hub.broadcast(everyone);
  CHECK(hub.broadcast(everyone) == bid);
  // Delivered in order: once the last one is there, a repeat sent before it would be too.
  hub.publish(draft("a", "last"));
  REQUIRE(wait_count(io, a, 5));
  io.run_for(std::chrono::milliseconds(50));
  std::vector<std::string> titles;
  for (const auto& e : a.events())
    if (e.type == "notification")
      titles.push_back(json::parse(e.data)["title"].get<std::string>());
  CHECK(titles == std::vector<std::string>{"shipped", "to two", "to all", "last"});
  CHECK(b.count() == 3);  // init, to two, to all
  CHECK(hub.unread_count("a") == 4);
  const auto m = hub.metrics();
  CHECK(m.publishes == 5);
  CHECK(m.publish_replays == 4);
  CHECK(hub.metrics_text().find("notify_publish_replays_total 4\n") != std::string::npos);
}

TEST_CASE("hub: an idempotency key used for another notification is refused, not dropped") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client a(io, hub, "a"), b(io, hub, "b");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count(); }));
  auto shipped = draft("a", "order 42 shipped");
  shipped.idempotency_key = "order";
  const auto id = hub.publish(shipped);
  auto other = draft("a", "order 43 shipped");  // a key that is not unique per publish
  other.idempotency_key = "order";
  try {
    hub.publish(other);
    FAIL("the reused key was accepted");
  } catch (const notify::ValidationError& e) {
    CHECK(e.field() == "idempotencyKey");
    CHECK(std::string(e.what()) ==
          "idempotencyKey: already used for a different notification (" + id + ")");
  }
  // Per user: b has no notification under the key, so b's is published, and the call says
  // that a's was refused.
  CHECK_THROWS_AS(hub.publish_to({"b", "a"}, other), notify::ValidationError);
  hub.publish(draft("a", "last"));
  hub.publish(draft("b", "last"));
  REQUIRE(wait_count(io, a, 3));
  REQUIRE(wait_count(io, b, 3));
  io.run_for(std::chrono::milliseconds(50));
  CHECK(a.count() == 3);  // init, order 42 shipped, last
  CHECK(json::parse(b.events()[1].data)["title"] == "order 43 shipped");
  CHECK(hub.list("a", false, 10).size() == 2);
}

namespace {
// A store written before idempotency keys: it keeps Store's default (no keys).
class KeylessStore final : public test::ForwardingStore {
 public:
  bool keeps_idempotency_keys() const noexcept override { return false; }
};
}  // namespace

TEST_CASE("hub: a draft with an idempotency key is refused when the store does not keep keys") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching(), std::make_shared<KeylessStore>());
  auto keyed = draft("a");
  keyed.idempotency_key = "k";
  CHECK_THROWS_AS(hub.publish(keyed), std::invalid_argument);
  CHECK_THROWS_AS(hub.async_publish(keyed, [](std::exception_ptr, std::string) {}),
                  std::invalid_argument);
  CHECK(hub.metrics().publishes == 0);
  CHECK_FALSE(hub.publish(draft("a")).empty());  // without a key it publishes
  auto bad = draft("a");
  bad.idempotency_key = "has space";
  CHECK_THROWS_WITH_AS(hub.publish(bad),
                       "idempotencyKey: may hold only printable ASCII without spaces",
                       notify::ValidationError);
  hub.stop();
}

TEST_CASE("hub: metrics in Prometheus text") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  Client c(io, hub, "alice");
  hub.publish(draft("alice"));
  REQUIRE(wait_count(io, c, 2));
  const auto text = hub.metrics_text();
  CHECK(text.find("notify_connections{protocol=\"sse\"} 1\n") != std::string::npos);
  CHECK(text.find("notify_publishes_total 1\n") != std::string::npos);
  CHECK(text.find("notify_events_delivered_total 2\n") != std::string::npos);
  CHECK(text.find("# TYPE notify_bytes_delivered_total counter") != std::string::npos);
  CHECK(text.find("notify_bus_connected{bus=\"inprocess\"} 1") != std::string::npos);
}

TEST_SUITE("concurrency") {
  TEST_CASE("hub: concurrent publishes from several threads reach every tab in order") {
    asio::io_context io;
    NotificationHub hub(io.get_executor(), no_batching());
    const std::vector<std::string> users{"u0", "u1", "u2"};
    std::vector<std::unique_ptr<Client>> clients;
    for (const auto& u : users) {
      clients.push_back(std::make_unique<Client>(io, hub, u));
      clients.push_back(std::make_unique<Client>(io, hub, u));
    }
    auto guard = asio::make_work_guard(io);
    std::thread io1([&] { io.run(); }), io2([&] { io.run(); });
    constexpr int per_thread = 150;
    std::vector<std::thread> publishers;
    for (int t = 0; t < 4; ++t) {
      publishers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i)
          hub.publish(draft(users[static_cast<std::size_t>(i + t) % users.size()]));
        if (t == 0)
          hub.broadcast(draft("", "everyone"));
      });
    }
    for (auto& p : publishers)
      p.join();
    const auto expected_per_user = 4 * per_thread / 3 + 1;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto all_done = [&] {
      for (const auto& c : clients)
        if (c->count() < static_cast<std::size_t>(expected_per_user) + 1)
          return false;
      return true;
    };
    while (!all_done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    guard.reset();
    hub.stop();
    io1.join();
    io2.join();
    for (const auto& c : clients) {
      auto e = c->events();
      REQUIRE(e.size() == static_cast<std::size_t>(expected_per_user) + 1);
      std::uint64_t previous = 0;
      for (std::size_t i = 1; i < e.size(); ++i) {
        const auto seq = std::stoull(e[i].id);
        CHECK(seq > previous);
        previous = seq;
      }
    }
  }
}

namespace {
// A Store kept in a MemoryStore, for probes that watch some of the calls.
using test::ForwardingStore;

// Counts how many append() and mark_all_read() calls are inside the store at once. Each
// waits up to `wait` for a second call to come in, so that two calls that may overlap do. It
// says it publishes its own writes when `publishes` is set (as RedisStore with
// publish_appends does); it does not really, which these tests do not need.
class OverlapProbeStore final : public ForwardingStore {
 public:
  OverlapProbeStore(bool publishes, std::chrono::milliseconds wait)
      : publishes_(publishes), wait_(wait) {}

  notify::Notification append(notify::Notification draft) override {
    meet();
    return ForwardingStore::append(std::move(draft));
  }
  notify::ReadResult mark_all_read(std::string_view user) override {
    meet();
    return ForwardingStore::mark_all_read(user);
  }
  bool publishes_appends() const noexcept override { return publishes_; }

  int most_at_once() {
    std::lock_guard lock(mutex_);
    return most_;
  }

 private:
  void meet() {
    std::unique_lock lock(mutex_);
    ++inside_;
    most_ = std::max(most_, inside_);
    arrived_.notify_all();
    arrived_.wait_for(lock, wait_, [this] { return inside_ >= 2; });
    --inside_;
  }

  const bool publishes_;
  const std::chrono::milliseconds wait_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  int inside_ = 0;
  int most_ = 0;
};

// Two threads publish, and mark read, at the same time through one hub.
int most_writes_at_once(bool publishes, std::chrono::milliseconds wait) {
  asio::io_context io;
  auto store = std::make_shared<OverlapProbeStore>(publishes, wait);
  NotificationHub hub(io.get_executor(), no_batching(), store);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&hub, t] {
      const auto user = "user" + std::to_string(t);
      hub.publish(draft(user));
      hub.mark_all_read(user);
    });
  }
  for (auto& t : threads)
    t.join();
  hub.stop();
  return store->most_at_once();
}
}  // namespace

TEST_SUITE("concurrency") {
  // RedisStore with publish_appends takes the id, stores and publishes in one script, which
  // Redis orders: the hub's sequence lock would only let one instance's threads write one
  // round trip at a time.
  TEST_CASE("hub: a store that publishes its own writes is written from several threads at once") {
    CHECK(most_writes_at_once(true, std::chrono::seconds(2)) == 2);
  }
  // ... while any other store's write and the hub's bus publish stay one step.
  TEST_CASE("hub: other stores are written one at a time") {
    CHECK(most_writes_at_once(false, std::chrono::milliseconds(100)) == 1);
  }
}

namespace {
// Counts the store calls that write notifications.
class AppendCountingStore final : public ForwardingStore {
 public:
  notify::Notification append(notify::Notification draft) override {
    ++appends;
    return ForwardingStore::append(std::move(draft));
  }
  std::vector<Notification> append_all(std::vector<Notification> drafts) override {
    ++append_alls;
    drafts_in_append_all += drafts.size();
    return memory_.append_all(std::move(drafts));
  }
  int appends = 0;
  int append_alls = 0;
  std::size_t drafts_in_append_all = 0;
};
}  // namespace

// One store call for all recipients is what lets SqliteStore commit them once.
TEST_CASE("hub: publish_to stores all recipients in one append_all, then delivers in id order") {
  asio::io_context io;
  auto store = std::make_shared<AppendCountingStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client a(io, hub, "a"), b(io, hub, "b"), c(io, hub, "c");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count() && c.count(); }));
  const auto ids = hub.publish_to({"c", "a", "b"}, draft("", "to three"));
  CHECK(store->append_alls == 1);
  CHECK(store->drafts_in_append_all == 3);
  CHECK(store->appends == 0);
  REQUIRE(ids.size() == 3);
  CHECK(std::stoull(ids[0]) < std::stoull(ids[1]));
  CHECK(std::stoull(ids[1]) < std::stoull(ids[2]));
  REQUIRE(wait_count(io, c, 2));
  REQUIRE(wait_count(io, a, 2));
  REQUIRE(wait_count(io, b, 2));
  CHECK(c.events()[1].id == ids[0]);
  CHECK(a.events()[1].id == ids[1]);
  CHECK(b.events()[1].id == ids[2]);
  hub.publish(draft("a", "one"));
  hub.broadcast(draft("", "all"));
  CHECK(store->appends == 2);
  CHECK(store->append_alls == 1);
  hub.stop();
}

using test::LossyBus;

TEST_CASE("hub: after a bus outage every connection is repaired from the store") {
  asio::io_context io;
  auto bus = std::make_shared<LossyBus>();
  NotificationHub hub(io.get_executor(), no_batching(), nullptr, bus);
  Client alice(io, hub, "alice"), bob(io, hub, "bob");
  const auto first = hub.publish(draft("alice", "before"));
  REQUIRE(wait_count(io, alice, 2));
  bus->lose(true);
  const auto m1 = hub.publish(draft("alice", "lost 1"));
  const auto m2 = hub.publish(draft("alice", "lost 2"));
  hub.mark_read("alice", first);
  io.run_for(std::chrono::milliseconds(20));
  CHECK(alice.count() == 2);
  CHECK(hub.metrics().bus_state == "reconnecting");
  bus->recover();
  // The repair runs on the hub's executor; until then the connection holds what comes live,
  // and the store read it makes includes this one: it comes once, before the count.
  const auto during = hub.publish(draft("alice", "during the repair"));
  REQUIRE(wait_count(io, alice, 6));
  io.run_for(std::chrono::milliseconds(20));
  auto e = alice.events();
  REQUIRE(e.size() == 6);
  CHECK(e[2].id == m1);
  CHECK(e[3].id == m2);
  CHECK(e[4].id == during);
  CHECK(e[5].type == "notification:read");
  CHECK(json::parse(e[5].data)["unreadCount"] == 3);
  const auto live = hub.publish(draft("alice", "after"));
  REQUIRE(wait_count(io, alice, 7));
  CHECK(alice.events()[6].id == live);
  REQUIRE(bob.count() == 2);  // nothing missed: only the authoritative count
  CHECK(bob.events()[1].type == "notification:read");
  CHECK(json::parse(bob.events()[1].data)["unreadCount"] == 0);
  CHECK(hub.metrics().gap_repairs == 2);
}

TEST_CASE("hub: a repair pass over many connections lets other work run between batches") {
  asio::io_context io;
  auto bus = std::make_shared<LossyBus>();
  NotificationHub hub(io.get_executor(), no_batching(), nullptr, bus);
  const auto clients = connected(io, hub, 200, 50);
  bus->lose(true);
  const auto lost = hub.publish(draft("user7", "lost"));
  bus->recover();
  std::uint64_t repaired_when_other_work_ran = 0;
  asio::post(io, [&] { repaired_when_other_work_ran = hub.metrics().gap_repairs; });
  REQUIRE(test::run_until(io, [&] { return hub.metrics().gap_repairs == 200; }));
  CHECK(repaired_when_other_work_ran > 0);
  CHECK(repaired_when_other_work_ran < 200);
  // A repair counts once its read is in; its events still have to reach the client. Wait
  // for what each is owed, then let anything more arrive.
  REQUIRE(test::run_until(io, [&] {
    for (int i = 0; i < 200; ++i)
      if (clients[i]->events().size() < (i % 50 == 7 ? 3u : 2u))
        return false;
    return true;
  }));
  io.run_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 200; ++i) {
    CAPTURE(i);
    const auto e = clients[i]->events();
    const bool user7 = i % 50 == 7;
    REQUIRE(e.size() == (user7 ? 3u : 2u));
    if (user7)
      CHECK(e[1].id == lost);
    CHECK(e.back().type == "notification:read");
    CHECK(json::parse(e.back().data)["unreadCount"] == (user7 ? 1 : 0));
  }
}

TEST_CASE("hub: a repair batch resets the connections that missed too much, repairs the rest") {
  asio::io_context io;
  auto bus = std::make_shared<LossyBus>();
  auto options = no_batching();
  options.max_replay = 2;
  NotificationHub hub(io.get_executor(), options, nullptr, bus);
  // 40 connections of 10 users: batches of the repair mix both kinds.
  const auto clients = connected(io, hub, 40, 10);
  bus->lose(true);
  std::map<int, std::vector<std::string>> lost;  // user → ids; even users miss too many
  for (int u = 0; u < 10; ++u)
    for (int k = 0; k < (u % 2 == 0 ? 3 : 1); ++k)
      lost[u].push_back(hub.publish(draft("user" + std::to_string(u), "lost")));
  const auto head = lost[9].back();  // the last one published: where a reset's snapshot is
  bus->recover();
  REQUIRE(test::run_until(io, [&] { return hub.metrics().gap_repairs == 40; }));
  // As above: wait for each client's events (a reset; or the missed one and the count).
  REQUIRE(test::run_until(io, [&] {
    for (int i = 0; i < 40; ++i)
      if (clients[i]->events().size() < ((i % 10) % 2 == 0 ? 2u : 3u))
        return false;
    return true;
  }));
  io.run_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 40; ++i) {
    CAPTURE(i);
    const int u = i % 10;
    const auto e = clients[i]->events();
    REQUIRE(e.size() >= 2);
    if (u % 2 == 0) {  // a reset whose snapshot is this user's, with all three
      REQUIRE(e.size() == 2);
      CHECK(e[1].type == "notifications:reset");
      CHECK(e[1].id == head);
      const auto snapshot = json::parse(e[1].data);
      CHECK(snapshot["unreadCount"] == 3);
      REQUIRE(snapshot["notifications"].size() == 3);
      for (const auto& n : snapshot["notifications"])
        CHECK(n["userId"] == "user" + std::to_string(u));
    } else {  // the one it missed, then the count
      REQUIRE(e.size() == 3);
      CHECK(e[1].id == lost[u].front());
      CHECK(e[2].type == "notification:read");
      CHECK(json::parse(e[2].data)["unreadCount"] == 1);
    }
  }
  const auto live = hub.publish(draft("user4", "after"));
  REQUIRE(wait_count(io, *clients[4], 3));
  CHECK(clients[4]->events()[2].id == live);
}

namespace {
// An in-process bus whose subscriptions take effect when the test confirms them, as Redis's
// do when their confirmation is read: until then the user's messages are lost.
class PendingSubscriptionBus final : public notify::Bus {
 public:
  // confirms_later: tells the hub so (Bus::subscriptions_confirmed_later), as RedisBus does.
  explicit PendingSubscriptionBus(bool confirms_later = false) : confirms_later_(confirms_later) {}
  void start(notify::BusListener& l) override { listener_ = &l; }
  void stop() noexcept override { listener_ = nullptr; }
  void publish(const notify::Envelope& e, std::error_code& ec) override {
    ec.clear();
    if (listener_ && (e.broadcast || confirmed_.count(e.user) != 0))
      listener_->on_bus_message(e);
  }
  void subscribe(std::string_view user) override { pending_.emplace(user); }
  void unsubscribe(std::string_view user) override { confirmed_.erase(std::string(user)); }
  notify::BusState state() const noexcept override { return notify::BusState::connected; }
  std::string_view name() const noexcept override { return "pending"; }
  bool subscriptions_confirmed_later() const noexcept override { return confirms_later_; }
  bool pending(const std::string& user) const { return pending_.count(user) != 0; }
  void confirm(const std::string& user) {
    pending_.erase(user);
    confirmed_.insert(user);
    listener_->on_bus_subscribed(user);
  }
  // A reconnection: every subscription is active again, announced by a recovery.
  void recover() {
    confirmed_.insert(pending_.begin(), pending_.end());
    pending_.clear();
    listener_->on_bus_recovered();
  }

 private:
  bool confirms_later_;
  notify::BusListener* listener_ = nullptr;
  std::set<std::string> pending_, confirmed_;
};
}  // namespace

TEST_CASE("hub: a repair does not cancel the reset a slow consumer is due") {
  // The slow connection dropped its queue; those notifications lie below its position, so a
  // gap repair that comes before the resync cannot bring them back: the reset still must.
  asio::io_context io;
  auto options = no_batching();
  options.queue.max_events = 4;
  auto bus = std::make_shared<LossyBus>();
  NotificationHub hub(io.get_executor(), options, nullptr, bus);
  Client slow(io, hub, "alice");
  REQUIRE(wait_count(io, slow, 1));
  slow.transport->stall();
  hub.publish(draft("alice", "first"));
  io.run_for(std::chrono::milliseconds(20));  // a write in flight
  std::string last;
  for (int i = 0; i < 10; ++i)
    last = hub.publish(draft("alice", std::to_string(i)));  // the queue overflows
  bus->recover();
  io.run_for(std::chrono::milliseconds(20));
  slow.transport->release();
  REQUIRE(test::run_until(io, [&] { return !slow.of_type("notifications:reset").empty(); }));
  const auto reset = slow.of_type("notifications:reset");
  REQUIRE(reset.size() == 1);
  CHECK(reset[0].id == last);
  CHECK(json::parse(reset[0].data)["unreadCount"] == 11);
  const auto after = hub.publish(draft("alice", "after"));
  REQUIRE(test::run_until(io, [&] { return slow.events().back().id == after; }));
  CHECK(slow.of_type("notifications:reset").size() == 1);
}

TEST_CASE("hub: what happens before a subscription takes effect comes with its repair") {
  asio::io_context io;
  auto bus = std::make_shared<PendingSubscriptionBus>();
  NotificationHub hub(io.get_executor(), no_batching(), nullptr, bus);
  const auto first = hub.publish(draft("alice", "first"));
  const auto second = hub.publish(draft("alice", "second"));
  Client alice(io, hub, "alice"), bob(io, hub, "bob"), carol(io, hub, "carol");
  REQUIRE(wait_count(io, alice, 1));
  REQUIRE(bus->pending("alice"));

  SUBCASE("a read: the authoritative count follows") {
    CHECK(hub.mark_read("alice", first).unread_count == 1);  // lost by the bus
    bus->confirm("alice");
    REQUIRE(wait_count(io, alice, 2));
    const auto e = alice.events();
    CHECK(e[1].type == "notification:read");
    CHECK(json::parse(e[1].data) == json({{"ids", json::array()}, {"unreadCount", 1}}));
  }
  SUBCASE("a notification: it comes, then the count") {
    const auto third = hub.publish(draft("alice", "third"));  // lost by the bus
    bus->confirm("alice");
    REQUIRE(wait_count(io, alice, 3));
    const auto e = alice.events();
    CHECK(e[1].id == third);
    CHECK(json::parse(e[2].data) == json({{"ids", json::array()}, {"unreadCount", 3}}));
  }
  SUBCASE("another user's read or notification: nothing comes") {
    hub.publish(draft("bob", "for bob"));
    hub.mark_read("carol", second);  // not carol's: changes nothing
    hub.mark_all_read("bob");
    bus->confirm("alice");
    io.run_for(std::chrono::milliseconds(20));
    CHECK(alice.count() == 1);
  }
}

TEST_CASE("hub: a user's first connections wait for the subscription, then one store read") {
  asio::io_context io;
  auto bus = std::make_shared<PendingSubscriptionBus>(true);
  auto options = no_batching();
  options.subscription_wait = std::chrono::seconds(60);  // never the reason a prime happens
  NotificationHub hub(io.get_executor(), options, nullptr, bus);
  const auto before = hub.publish(draft("alice", "before"));
  Client alice(io, hub, "alice");
  io.run_for(std::chrono::milliseconds(20));
  REQUIRE(bus->pending("alice"));
  CHECK(alice.count() == 0);  // no init before the subscription is active
  CHECK(hub.connection_count("alice") == 1);
  CHECK(hub.metrics().connections_awaiting_subscription == 1);

  SUBCASE("what was published meanwhile is in the init, with no repair after it") {
    const auto meanwhile = hub.publish(draft("alice", "meanwhile"));  // lost by the bus
    Client second(io, hub, "alice");  // waits too: the subscription is not active yet
    io.run_for(std::chrono::milliseconds(20));
    CHECK(second.count() == 0);
    bus->confirm("alice");
    REQUIRE(wait_count(io, alice, 1));
    REQUIRE(wait_count(io, second, 1));
    io.run_for(std::chrono::milliseconds(20));
    for (const auto* c : {&alice, &second}) {
      const auto e = c->events();
      REQUIRE(e.size() == 1);
      CHECK(e[0].type == "init");
      CHECK(e[0].id == meanwhile);
      const auto init = json::parse(e[0].data);
      CHECK(init["unreadCount"] == 2);
      REQUIRE(init["notifications"].size() == 2);
      CHECK(init["notifications"][0]["id"] == meanwhile);
      CHECK(init["notifications"][1]["id"] == before);
    }
    CHECK(hub.metrics().gap_repairs == 0);
    CHECK(hub.metrics().connections_awaiting_subscription == 0);
    const auto live = hub.publish(draft("alice", "live"));
    REQUIRE(wait_count(io, alice, 2));
    REQUIRE(wait_count(io, second, 2));
    CHECK(alice.events()[1].id == live);
    CHECK(second.events()[1].id == live);
    Client third(io, hub, "alice");  // the subscription is active: primed at once
    io.run_for(std::chrono::milliseconds(20));
    CHECK(third.count() == 1);
  }
  SUBCASE("a connection that resumes gets what it missed after its cursor") {
    const auto missed = hub.publish(draft("alice", "missed"));
    Client resumed(io, hub, "alice", before);
    Client from_the_future(io, hub, "alice", "99999");  // waits too, then a reset
    bus->confirm("alice");
    REQUIRE(wait_count(io, resumed, 2));
    const auto e = resumed.events();
    CHECK(e[0].type == "init");
    CHECK(e[1].id == missed);
    REQUIRE(wait_count(io, from_the_future, 1));
    const auto reset = from_the_future.events();
    REQUIRE(reset.size() == 1);
    CHECK(reset[0].type == "notifications:reset");
    CHECK(json::parse(reset[0].data)["unreadCount"] == 2);
    CHECK(hub.metrics().resets_unknown_cursor == 1);
    Client unknown(io, hub, "alice", "not a cursor");  // active now: at once, a reset
    io.run_for(std::chrono::milliseconds(20));
    CHECK(unknown.of_type("notifications:reset").size() == 1);
  }
  SUBCASE("a bus that reconnected has every subscription active: primed too") {
    bus->recover();
    REQUIRE(wait_count(io, alice, 1));
    CHECK(alice.events()[0].type == "init");
  }
  SUBCASE("a connection that closes while it waits is forgotten") {
    alice.sink->close();
    REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
    bus->confirm("alice");
    io.run_for(std::chrono::milliseconds(20));
    CHECK(alice.count() == 0);
    CHECK(hub.metrics().connections_sse == 0);
  }
}

TEST_CASE("hub: a connection whose subscription is not confirmed in time is primed anyway") {
  asio::io_context io;
  auto bus = std::make_shared<PendingSubscriptionBus>(true);
  auto options = no_batching();
  options.subscription_wait = std::chrono::milliseconds(50);
  NotificationHub hub(io.get_executor(), options, nullptr, bus);
  std::vector<std::string> reported;
  hub.set_error_handler([&](std::string_view what) { reported.emplace_back(what); });
  const auto attached = std::chrono::steady_clock::now();
  Client alice(io, hub, "alice");
  REQUIRE(wait_count(io, alice, 1));
  CHECK(std::chrono::steady_clock::now() - attached >= std::chrono::milliseconds(50));
  CHECK(alice.events()[0].type == "init");
  REQUIRE(reported.size() == 1);
  CHECK(reported[0].find("waited 50 ms for their bus subscription") != std::string::npos);
  const auto m = hub.metrics();
  CHECK(m.subscription_waits_expired == 1);
  CHECK(m.connections_awaiting_subscription == 0);
  CHECK(m.handler_errors == 0);  // not an exception
  const auto text = hub.metrics_text();
  CHECK(text.find("\nnotify_subscription_waits_expired_total 1\n") != std::string::npos);
  CHECK(text.find("\nnotify_connections_awaiting_subscription 0\n") != std::string::npos);
  // The subscription comes late: what the bus lost until then comes with its repair.
  const auto lost = hub.publish(draft("alice", "lost"));
  bus->confirm("alice");
  REQUIRE(wait_count(io, alice, 3));
  CHECK(alice.events()[1].id == lost);
  CHECK(alice.events()[2].type == "notification:read");
}

TEST_CASE("hub: subscription_wait 0 primes at once, as with a bus that confirms nothing") {
  asio::io_context io;
  auto bus = std::make_shared<PendingSubscriptionBus>(true);
  auto options = no_batching();
  options.subscription_wait = std::chrono::milliseconds(0);
  NotificationHub hub(io.get_executor(), options, nullptr, bus);
  Client alice(io, hub, "alice");
  io.run_for(std::chrono::milliseconds(20));
  CHECK(bus->pending("alice"));
  CHECK(alice.count() == 1);
  options.subscription_wait = std::chrono::milliseconds(-1);
  CHECK_THROWS_AS(NotificationHub(io.get_executor(), options), std::invalid_argument);
}

TEST_CASE("hub, one thread: a broadcast during a fan-out leaves with the earlier one") {
  // Sinks on a context run by one thread are flushed by its FlushLane a few dozen at a time;
  // in between the context runs other work, here a second broadcast, which then shares a
  // write with the first on every connection not yet written.
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  constexpr std::size_t connections = 500;
  std::vector<std::shared_ptr<test::RecordingTransport>> transports;
  for (std::size_t i = 0; i < connections; ++i) {
    transports.push_back(std::make_shared<test::RecordingTransport>(io, true));
    hub.attach("u" + std::to_string(i), notify::SseSink::create(transports.back()));
  }
  auto events_of = [&](std::size_t i) { return test::parse_sse(transports[i]->bytes()); };
  auto count_with = [&](std::size_t n) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < connections; ++i)
      count += events_of(i).size() >= n;
    return count;
  };
  REQUIRE(test::run_until(io, [&] { return count_with(1) == connections; }));
  io.run_for(std::chrono::milliseconds(10));
  std::vector<int> writes_before;
  for (const auto& t : transports)
    writes_before.push_back(t->writes());
  auto started = [&] {
    std::size_t count = 0;
    for (std::size_t i = 0; i < connections; ++i)
      count += transports[i]->writes() > writes_before[i];
    return count;
  };

  const auto first = hub.broadcast(test::broadcast("first"));
  io.restart();
  // Run the fan-out a handler at a time until it is past its first turns: a lane that
  // wrote every connection in one task would be done by then.
  while (started() < 100 && io.poll_one() != 0) {
  }
  const auto written_before_second = started();
  CHECK(written_before_second >= 100);
  CHECK(written_before_second < connections);  // the fan-out let other work run
  const auto second = hub.broadcast(test::broadcast("second"));
  REQUIRE(test::run_until(io, [&] { return count_with(3) == connections; }));
  io.run_for(std::chrono::milliseconds(10));

  std::size_t shared_writes = 0;
  for (std::size_t i = 0; i < connections; ++i) {
    const auto e = events_of(i);
    REQUIRE(e.size() == 3);
    CHECK(e[1].id == first);
    CHECK(e[2].id == second);
    const auto writes = transports[i]->writes() - writes_before[i];
    CHECK((writes == 1 || writes == 2));
    shared_writes += writes == 1;
  }
  // Every connection that had not been written when the second broadcast came got both
  // broadcasts in one write.
  CHECK(shared_writes >= connections - written_before_second);
}

TEST_CASE("hub: reads name a user") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  CHECK_THROWS_AS(hub.list("", false, 10), std::invalid_argument);
  CHECK_THROWS_AS(hub.unread_count(""), std::invalid_argument);
  CHECK_THROWS_AS(hub.mark_all_read(""), std::invalid_argument);
  hub.publish(draft("alice"));
  hub.stop();
  CHECK(hub.unread_count("alice") == 1);  // the store outlives the connections
}
