// RedisBus with real hubs on one redis-server: delivery between instances, subscription
// churn, and (TEST_SUITE "redis-restart", its own ctest entry) kill -9 of Redis mid-stream.
#include "redis_fixtures.hpp"

#ifdef NOTIFY_TEST_WITH_REDIS

#include <notify/error.hpp>
#include <notify/memory_store.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <initializer_list>
#include <map>
#include <thread>

using namespace redistest;

namespace {

// Where a test's buses run: a thread of their own, or a strand on the hub's io_context.
enum class BusThread { own, host };
constexpr BusThread both_bus_threads[] = {BusThread::own, BusThread::host};

// (As a std::string in a CAPTURE: doctest shows a const char* as a pointer.)
const char* name_of(BusThread where) {
  return where == BusThread::own ? "own thread" : "host's executor";
}

// On the host's executor start() does not wait for the first connection; the cases that
// expect a connected bus once the hub is constructed wait here.
void await_connected(const notify::RedisBus& bus, BusThread where) {
  if (where == BusThread::host)
    REQUIRE(eventually([&] { return bus.state() == notify::BusState::connected; }));
}

// A RedisBus that never subscribes to one user's channel: that user's connections on its
// instance wait for a subscription that does not come.
class SubscriptionWithheld final : public notify::Bus {
 public:
  SubscriptionWithheld(std::shared_ptr<notify::RedisBus> inner, std::string user)
      : inner_(std::move(inner)), user_(std::move(user)) {}
  void start(notify::BusListener& listener) override { inner_->start(listener); }
  void stop() noexcept override { inner_->stop(); }
  void publish(const notify::Envelope& envelope, std::error_code& ec) override {
    inner_->publish(envelope, ec);
  }
  void subscribe(std::string_view user) override {
    if (user != user_)
      inner_->subscribe(user);
  }
  void unsubscribe(std::string_view user) override {
    if (user != user_)
      inner_->unsubscribe(user);
  }
  notify::BusState state() const noexcept override { return inner_->state(); }
  std::string_view name() const noexcept override { return inner_->name(); }
  bool subscriptions_confirmed_later() const noexcept override {
    return inner_->subscriptions_confirmed_later();
  }

 private:
  std::shared_ptr<notify::RedisBus> inner_;
  std::string user_;
};

// One instance of a fleet: a hub with its RedisBus and RedisStore.
struct Instance {
  std::shared_ptr<notify::RedisBus> bus;
  std::shared_ptr<notify::RedisStore> store;
  std::unique_ptr<notify::NotificationHub> hub;

  // `withheld`: a user whose channel this instance never subscribes to. `adjust` changes the
  // bus's options.
  Instance(IoThread& io, const testredis::RedisServer& server, const std::string& prefix,
           bool publish_appends = true, BusThread where = BusThread::own,
           const std::string& withheld = {},
           const std::function<void(notify::RedisBusOptions&)>& adjust = {}) {
    notify::RedisBusOptions bus_options;
    bus_options.redis = options_for(server, prefix);
    bus_options.health_check_interval = 500ms;
    bus_options.on_error = [](std::string_view) {};
    if (where == BusThread::host)
      bus_options.executor = io.io.get_executor();
    if (adjust)
      adjust(bus_options);
    bus = std::make_shared<notify::RedisBus>(bus_options);
    notify::RedisStoreOptions store_options;
    store_options.redis = options_for(server, prefix);
    store_options.publish_appends = publish_appends;
    store = std::make_shared<notify::RedisStore>(store_options);
    std::shared_ptr<notify::Bus> hub_bus = bus;
    if (!withheld.empty())
      hub_bus = std::make_shared<SubscriptionWithheld>(bus, withheld);
    hub = std::make_unique<notify::NotificationHub>(io.io.get_executor(), hub_options(), store,
                                                    hub_bus);
    hub->set_error_handler([](std::string_view what) {
      std::fprintf(stderr, "hub error: %.*s\n", static_cast<int>(what.size()), what.data());
    });
    await_connected(*bus, where);
  }
  ~Instance() { hub->stop(); }
};

std::vector<std::string> ids_of(const std::vector<test::SseEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events)
    out.push_back(e.id);
  return out;
}

// How many connections are subscribed to `channel` (a shard channel when `sharded`).
int subscribers(const testredis::RedisServer& server, const std::string& channel,
                bool sharded = false) {
  const auto reply =  // *2 $n channel :count
      server.command((sharded ? "PUBSUB SHARDNUMSUB " : "PUBSUB NUMSUB ") + channel);
  const auto colon = reply.rfind(':');
  return colon == std::string::npos ? -1 : std::atoi(reply.c_str() + colon + 1);
}

// Whether each client has its init: a user's first connection on an instance gets it once
// the user's subscription is active, not during attach.
bool has_init(const Client& c) {
  return c.of_type("init").size() == 1;
}
bool has_init(std::initializer_list<const Client*> clients) {
  return std::all_of(clients.begin(), clients.end(), [](const Client* c) { return has_init(*c); });
}
bool has_init(const std::vector<std::unique_ptr<Client>>& clients) {
  return std::all_of(clients.begin(), clients.end(), [](const auto& c) { return has_init(*c); });
}

}  // namespace

TEST_CASE("redis bus: what is published on one instance reaches the connections of another") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const bool publish_appends : {true, false})
    for (const auto where : both_bus_threads) {
      CAPTURE(publish_appends);
      const std::string bus_thread = name_of(where);
      CAPTURE(bus_thread);
      const std::string prefix = std::string(publish_appends ? "two:" : "twohub:") +
                                 (where == BusThread::own ? "own:" : "host:");
      IoThread io;
      Instance a(io, server, prefix, publish_appends, where);
      Instance b(io, server, prefix, publish_appends, where);
      CHECK(a.bus->state() == notify::BusState::connected);
      CHECK(b.hub->metrics().bus_state == "connected");
      Client bob_on_b(io.io, *b.hub, "bob");
      Client bob_on_a(io.io, *a.hub, "bob");
      Client carol_on_b(io.io, *b.hub, "carol");
      // Wait for the connections' init (a user's first connection gets it once its
      // subscription is active) and for the subscriptions.
      REQUIRE(eventually([&] { return has_init({&bob_on_b, &bob_on_a, &carol_on_b}); }));
      REQUIRE(eventually([&] {
        return server.command("PUBSUB NUMSUB " + prefix + "u:bob").find(":2\r\n") !=
               std::string::npos;
      }));

      const auto id1 = a.hub->publish(draft("bob", "one"));
      const auto id2 = a.hub->publish(draft("bob", "two"));
      const auto all = a.hub->broadcast([] {
        notify::Notification n;
        n.type = "system";
        n.title = "everyone";
        return n;
      }());
      for (auto* c : {&bob_on_b, &bob_on_a}) {
        REQUIRE(eventually([&] { return c->of_type("notification").size() == 3; }));
        CHECK(ids_of(c->of_type("notification")) == std::vector<std::string>{id1, id2, all});
      }
      REQUIRE(eventually([&] { return carol_on_b.of_type("notification").size() == 1; }));
      CHECK(carol_on_b.of_type("notification")[0].id == all);

      // A read on A updates B's stream, with the count.
      const auto r = a.hub->mark_read("bob", id1);
      CHECK(r.unread_count == 2);
      // (A gap repair, when a subscription is confirmed, sends notification:read with no ids.)
      auto read_events = [&] {
        std::vector<nlohmann::json> out;
        for (const auto& e : bob_on_b.of_type("notification:read")) {
          auto j = nlohmann::json::parse(e.data);
          if (!j.at("ids").empty())
            out.push_back(j);
        }
        return out;
      };
      REQUIRE(eventually([&] { return read_events().size() == 1; }));
      CHECK(read_events()[0].at("ids") == nlohmann::json::array({id1}));
      CHECK(read_events()[0].at("unreadCount") == 2);

      // An ephemeral event crosses too. It is not stored: one sent while B's subscription
      // is being made again (a health check unanswered on a loaded machine drops it) is
      // lost by design, so it is sent again every 3 s until one arrives.
      auto sent_at = std::chrono::steady_clock::now() - 1h;
      REQUIRE(eventually([&] {
        if (!bob_on_b.of_type("typing").empty())
          return true;
        if (std::chrono::steady_clock::now() - sent_at > 3s) {
          REQUIRE(when_bus_available([&] {
            a.hub->send_to("bob", "typing", {{"from", "carol"}});
          }));
          sent_at = std::chrono::steady_clock::now();
        }
        return false;
      }));
      CHECK(bob_on_b.state().unread == 2);
      CHECK(bob_on_b.state().duplicates == 0);

      // Ending bob's sessions on A ends them on B too, and nobody else's.
      REQUIRE(when_bus_available([&] { a.hub->end_sessions("bob", "logged_out"); }));
      REQUIRE(
          eventually([&] { return bob_on_a.transport->closed() && bob_on_b.transport->closed(); }));
      for (auto* c : {&bob_on_a, &bob_on_b}) {
        REQUIRE(c->of_type("session:end").size() == 1);
        CHECK(c->of_type("session:end")[0].data == R"({"reason":"logged_out"})");
      }
      CHECK(a.hub->metrics().sessions_ended == 1);
      CHECK(b.hub->metrics().sessions_ended == 1);
      CHECK_FALSE(carol_on_b.transport->closed());
    }
}

TEST_CASE("redis bus: end_sessions ends a connection whose user's subscription is not active") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  Instance a(io, server, "early:");
  Instance b(io, server, "early:", true, BusThread::own, "dave");
  Client dave_on_b(io.io, *b.hub, "dave");
  // Primed without its subscription once the wait for it ran out.
  REQUIRE(eventually([&] { return has_init(dave_on_b); }));
  CHECK(b.hub->metrics().subscription_waits_expired == 1);

  // Both go out on A's publishing connection, in this order: what goes on dave's channel does
  // not reach B, and the end of dave's sessions does. (A loaded machine has had a bus miss its
  // health check and reconnect meanwhile, and a bus message is lost then: it is sent again.)
  const auto both_connected = [&] { return all_connected(a, b); };
  for (int attempt = 0; attempt < 5 && !dave_on_b.transport->closed(); ++attempt) {
    REQUIRE(eventually(both_connected));
    try {
      a.hub->send_to("dave", "typing", {{"from", "erin"}});
      a.hub->end_sessions("dave", "revoked");
    } catch (const std::system_error&) {
      continue;  // bus_unavailable: the publishing connection was reconnecting
    }
    eventually([&] { return dave_on_b.transport->closed(); }, 5s);
  }
  REQUIRE(dave_on_b.transport->closed());
  REQUIRE(dave_on_b.of_type("session:end").size() == 1);
  CHECK(dave_on_b.of_type("session:end")[0].data == R"({"reason":"revoked"})");
  CHECK(dave_on_b.of_type("typing").empty());
  CHECK(b.hub->metrics().sessions_ended == 1);
}

TEST_CASE("redis bus: a refused read of the session-end log is reported, and the bus goes on") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  // B's user may do everything but read the log (XRANGE): its replay after a reconnection is
  // refused with NOPERM, which no reconnection changes.
  REQUIRE(server.command("ACL SETUSER no-xrange on >pw ~* &* +@all -xrange") == "+OK\r\n");
  IoThread io;
  Instance a(io, server, "noread:");
  const auto reports = std::make_shared<Reports>();
  Instance b(io, server, "noread:", true, BusThread::own, {}, [&](notify::RedisBusOptions& o) {
    o.redis.user = "no-xrange";
    o.redis.password = "pw";
    o.on_error = Reports::into(reports);
  });
  const auto reported = [&] { return reports->all(); };
  Client frank_on_b(io.io, *b.hub, "frank");
  REQUIRE(eventually([&] { return has_init(frank_on_b); }));

  server.command("CLIENT KILL USER no-xrange");  // both of B's connections
  REQUIRE(eventually([&] {
    return reported().find("reading the log of session ends: NOPERM") != std::string::npos;
  }));
  INFO("reported by b:\n" << reported());
  // Refused for good, not "not now": the publishing connection stays, and the bus is back.
  REQUIRE(eventually([&] { return b.bus->state() == notify::BusState::connected; }));
  CHECK(reported().find("publishing connection: the server answered") == std::string::npos);
  // What comes live still arrives: a notification, then the end of frank's sessions.
  const auto id = a.hub->publish(draft("frank", "after the refused read"));
  REQUIRE(eventually([&] { return frank_on_b.state().ids == std::vector<std::string>{id}; }));
  REQUIRE(when_bus_available([&] { a.hub->end_sessions("frank", "logged_out"); }));
  REQUIRE(eventually([&] { return frank_on_b.transport->closed(); }));
  CHECK(frank_on_b.of_type("session:end").size() == 1);
}

TEST_CASE("redis bus: an end of sessions sent while an instance was away reaches it once back") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const auto where : both_bus_threads) {
    const std::string bus_thread = name_of(where);
    CAPTURE(bus_thread);
    const std::string prefix = where == BusThread::own ? "away:own:" : "away:host:";
    // B signs in as a user of its own, which the test turns off to keep B away (it cannot
    // authenticate again) for as long as it needs, whatever the machine's pace.
    REQUIRE(server.command("ACL SETUSER away-b on >pw ~* &* +@all") == "+OK\r\n");
    IoThread io;
    // A's publishes wait for Redis below: no watchdog may give up on them.
    Instance a(io, server, prefix, true, where, {},
               [](notify::RedisBusOptions& o) { o.redis.command_timeout = 60000ms; });
    Instance b(io, server, prefix, true, where, {}, [](notify::RedisBusOptions& o) {
      o.redis.user = "away-b";
      o.redis.password = "pw";
    });
    Client frank_on_b(io.io, *b.hub, "frank");
    Client grace_on_b(io.io, *b.hub, "grace");
    REQUIRE(eventually([&] { return has_init({&frank_on_b, &grace_on_b}); }));

    // B goes away and stays away.
    REQUIRE(server.command("ACL SETUSER away-b off") == "+OK\r\n");
    server.command("CLIENT KILL USER away-b");
    REQUIRE(eventually([&] { return b.bus->state() != notify::BusState::connected; }));
    // Redis holds writes, so that the ends are logged after end_sessions() returned and after
    // the new session below began (as a busy pipeline can): what counts is when end_sessions()
    // was called.
    REQUIRE(server.command("CLIENT PAUSE 60000 WRITE") == "+OK\r\n");
    // Others' ends first: frank's is on the log's second page (256 entries a page).
    for (int i = 0; i < 300; ++i)
      a.hub->end_sessions("other" + std::to_string(i), "logged_out");
    a.hub->end_sessions("frank", "logged_out");
    // A new session of frank's on B, begun after the end, while B is away.
    std::this_thread::sleep_for(20ms);
    Client frank_again_on_b(io.io, *b.hub, "frank");
    CHECK(server.command("XLEN " + prefix + "session-ends") == ":0\r\n");  // still held
    REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");
    REQUIRE(eventually(
        [&] { return server.command("XLEN " + prefix + "session-ends") == ":301\r\n"; }));
    CHECK(b.bus->state() != notify::BusState::connected);           // so the ends were missed
    REQUIRE(server.command("ACL SETUSER away-b on") == "+OK\r\n");  // B comes back

    REQUIRE(eventually([&] { return frank_on_b.transport->closed(); }));
    REQUIRE(frank_on_b.of_type("session:end").size() == 1);
    CHECK(frank_on_b.of_type("session:end")[0].data == R"({"reason":"logged_out"})");
    CHECK(b.hub->metrics().sessions_ended == 1);
    REQUIRE(eventually([&] { return has_init(frank_again_on_b); }));
    // The replay that ended the old session has judged the new one: it stays, as does grace's.
    std::this_thread::sleep_for(300ms);
    CHECK_FALSE(frank_again_on_b.transport->closed());
    CHECK(frank_again_on_b.of_type("session:end").empty());
    CHECK_FALSE(grace_on_b.transport->closed());
    CHECK(b.hub->metrics().sessions_ended == 1);
  }
}

TEST_CASE("redis bus: a session end lost with the publishing connection is sent again") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const auto where : both_bus_threads) {
    for (const bool kept : {true, false}) {
      const std::string bus_thread = name_of(where);
      CAPTURE(bus_thread);
      CAPTURE(kept);
      const std::string prefix = std::string("resend:") +
                                 (where == BusThread::own ? "own:" : "host:") +
                                 (kept ? "kept:" : "unkept:");
      IoThread io;
      const auto adjust = [kept](notify::RedisBusOptions& o) {
        o.redis.command_timeout = 60000ms;  // the paused command below is not given up on
        if (!kept)
          o.session_end_retention = 0s;
      };
      Instance a(io, server, prefix, true, where, {}, adjust);
      Instance b(io, server, prefix, true, where, {}, adjust);
      Client frank_on_b(io.io, *b.hub, "frank");
      Client grace_on_b(io.io, *b.hub, "grace");
      REQUIRE(eventually([&] { return has_init({&frank_on_b, &grace_on_b}); }));

      // Held by the pause, then dropped with A's publishing connection: Redis never runs it,
      // and end_sessions() had returned.
      REQUIRE(server.command("CLIENT PAUSE 60000 WRITE") == "+OK\r\n");
      a.hub->end_sessions("frank", "logged_out");
      const std::string running = kept ? " cmd=eval " : " cmd=publish ";
      std::string list;
      REQUIRE(eventually([&] {
        list = server.command("CLIENT LIST TYPE normal");
        return list.find(running) != std::string::npos;
      }));
      CAPTURE(list);
      REQUIRE(list.find(running) == list.rfind(running));  // one connection runs it: A's
      const auto id = std::atoll(list.c_str() + list.rfind("id=", list.find(running)) + 3);
      REQUIRE(server.command("CLIENT KILL ID " + std::to_string(id)) == ":1\r\n");
      // A new login of frank's on B, after the end: the end sent again must spare it.
      std::this_thread::sleep_for(20ms);
      Client frank_again_on_b(io.io, *b.hub, "frank");
      REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");

      REQUIRE(eventually([&] { return frank_on_b.transport->closed(); }));
      REQUIRE(frank_on_b.of_type("session:end").size() == 1);
      CHECK(frank_on_b.of_type("session:end")[0].data == R"({"reason":"logged_out"})");
      REQUIRE(eventually([&] { return has_init(frank_again_on_b); }));
      std::this_thread::sleep_for(300ms);
      CHECK_FALSE(frank_again_on_b.transport->closed());
      CHECK(frank_again_on_b.of_type("session:end").empty());
      CHECK_FALSE(grace_on_b.transport->closed());
      CHECK(b.hub->metrics().sessions_ended == 1);
      // Logged once: the first one never ran.
      CHECK(server.command("XLEN " + prefix + "session-ends") == (kept ? ":1\r\n" : ":0\r\n"));
    }
  }
}

TEST_CASE("redis bus: a session begun where end_sessions() was called is not ended by its echo") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const auto where : both_bus_threads) {
    const std::string bus_thread = name_of(where);
    CAPTURE(bus_thread);
    const std::string prefix = where == BusThread::own ? "echo:own:" : "echo:host:";
    IoThread io;
    const auto adjust = [](notify::RedisBusOptions& o) { o.redis.command_timeout = 60000ms; };
    Instance a(io, server, prefix, true, where, {}, adjust);
    Instance b(io, server, prefix, true, where, {}, adjust);
    Client frank_on_a(io.io, *a.hub, "frank");
    Client frank_on_b(io.io, *b.hub, "frank");
    REQUIRE(eventually([&] { return has_init({&frank_on_a, &frank_on_b}); }));

    // Redis holds the end until the new session has begun on A: A's own subscriber gets the
    // end back only after that, as it would behind a busy pipeline.
    REQUIRE(server.command("CLIENT PAUSE 60000 WRITE") == "+OK\r\n");
    a.hub->end_sessions("frank", "logged_out");
    REQUIRE(eventually([&] { return frank_on_a.transport->closed(); }));  // ended in the call
    Client frank_again_on_a(io.io, *a.hub, "frank");
    REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");

    REQUIRE(eventually([&] { return frank_on_b.transport->closed(); }));  // it went out
    REQUIRE(eventually([&] { return has_init(frank_again_on_a); }));
    std::this_thread::sleep_for(300ms);  // A's subscriber has had it too
    CHECK_FALSE(frank_again_on_a.transport->closed());
    CHECK(frank_again_on_a.of_type("session:end").empty());
    CHECK(a.hub->metrics().sessions_ended == 1);
    CHECK(b.hub->metrics().sessions_ended == 1);
  }
}

TEST_CASE("redis bus: the log of session ends is bounded by its retention") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  Instance a(io, server, "kept:", true, BusThread::own, {},
             [](notify::RedisBusOptions& o) { o.session_end_retention = 5s; });
  for (int i = 0; i < 3; ++i)
    REQUIRE(
        when_bus_available([&] { a.hub->end_sessions("user" + std::to_string(i), "logged_out"); }));
  REQUIRE(eventually([&] { return server.command("XLEN kept:session-ends") == ":3\r\n"; }));
  const auto ttl = std::atoi(server.command("TTL kept:session-ends").c_str() + 1);
  CHECK(ttl > 0);
  CHECK(ttl <= 5);
  // Off: only published.
  Instance b(io, server, "unkept:", true, BusThread::own, {},
             [](notify::RedisBusOptions& o) { o.session_end_retention = 0s; });
  REQUIRE(when_bus_available([&] { b.hub->end_sessions("user", "logged_out"); }));
  // after the end on the same connection
  REQUIRE(when_bus_available([&] { b.hub->send_to("user", "typing", {}); }));
  REQUIRE(eventually([&] {
    return b.bus->state() == notify::BusState::connected &&
           server.command("EXISTS unkept:session-ends") == ":0\r\n";
  }));
}

TEST_CASE("redis bus: connections attached from several threads during a stream get it all, once") {
  // Users' first connections wait for their subscriptions and are primed in batches on the
  // hubs' executor, while other threads attach more connections of the same users and one
  // instance publishes.
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  Instance a(io, server, "storm:", true, BusThread::own);
  Instance b(io, server, "storm:", true, BusThread::host);
  constexpr int users = 40;
  constexpr int per_user = 5;
  auto user_of = [](int i) { return "s" + std::to_string(i % users); };
  std::atomic<bool> attaching{true};
  std::thread publisher([&] {
    for (int k = 0; k < users * per_user; ++k) {
      a.hub->publish(draft(user_of(k), std::to_string(k)));
      if (k % users == users - 1 && attaching)
        std::this_thread::sleep_for(5ms);
    }
  });
  constexpr int threads = 4;
  constexpr int per_thread = 30;
  std::vector<std::vector<std::unique_ptr<Client>>> clients(threads);
  std::vector<std::thread> attachers;
  for (int t = 0; t < threads; ++t) {
    attachers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto& hub = (i + t) % 2 == 0 ? *a.hub : *b.hub;
        clients[t].push_back(std::make_unique<Client>(io.io, hub, user_of(t * per_thread + i)));
      }
    });
  }
  for (auto& t : attachers)
    t.join();
  attaching = false;
  publisher.join();

  for (auto& list : clients) {
    for (auto& c : list) {
      const auto user = c->sink->user();
      CAPTURE(user);
      const auto expected = stored_ids(*a.store, user);
      REQUIRE(expected.size() == static_cast<std::size_t>(per_user));
      const bool complete = eventually([&] { return c->state().ids == expected; });
      const auto s = c->state();
      CHECK(complete);
      CHECK(joined(s.ids) == joined(expected));
      CHECK(s.duplicates == 0);
      CHECK(s.in_order);
      CHECK(s.resets == 0);
      CHECK(s.unread == static_cast<std::uint64_t>(per_user));
    }
  }
}

TEST_CASE("redis bus: 1000 users attach and leave, and no user channel stays subscribed") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  Instance a(io, server, "churn:");
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 1000; ++i) {
    clients.push_back(std::make_unique<Client>(io.io, *a.hub, "user-" + std::to_string(i)));
    if (i % 3 == 0)
      clients.push_back(std::make_unique<Client>(io.io, *a.hub, "user-" + std::to_string(i)));
  }
  auto channels = [&] {
    const auto reply = server.command("PUBSUB CHANNELS churn:*");
    std::size_t n = 0;
    for (std::size_t at = reply.find("churn:u:"); at != std::string::npos;
         at = reply.find("churn:u:", at + 1))
      ++n;
    return n;
  };
  REQUIRE(eventually([&] { return channels() == 1000; }));
  CHECK(server.command("PUBSUB NUMSUB churn:broadcast").find(":1\r\n") != std::string::npos);
  // Churn: half leave and come back, then everybody leaves.
  for (std::size_t i = 0; i < clients.size(); i += 2)
    clients[i]->sink->close();
  for (int i = 0; i < 1000; i += 2)
    clients.push_back(std::make_unique<Client>(io.io, *a.hub, "user-" + std::to_string(i)));
  for (auto& c : clients)
    c->sink->close();
  REQUIRE(eventually([&] { return a.hub->connection_count() == 0; }));
  REQUIRE(eventually([&] { return channels() == 0; }));
  CHECK(server.command("PUBSUB NUMSUB churn:u:user-0 churn:u:user-999").find(":1\r\n") ==
        std::string::npos);
  CHECK(server.command("PUBSUB NUMSUB churn:broadcast").find(":1\r\n") != std::string::npos);
}

// A bus that checks its connection every `health_check`, reconnects within 100 ms, and
// reports into `reports`.
notify::RedisBusOptions watchful_options(const testredis::RedisServer& server,
                                         const std::string& prefix,
                                         std::chrono::milliseconds health_check,
                                         const std::shared_ptr<Reports>& reports) {
  notify::RedisBusOptions options;
  options.redis = options_for(server, prefix);
  options.redis.backoff_initial = 20ms;
  options.redis.backoff_max = 100ms;
  options.health_check_interval = health_check;
  options.on_error = Reports::into(reports);
  return options;
}

// How often the bus reported a PING unanswered (in `log`, its reports), and how often it
// dropped its connection (from `listener`'s states).
std::size_t unanswered_pings(const std::string& log) {
  std::size_t n = 0;
  for (auto at = log.find("no answer to PING"); at != std::string::npos;
       at = log.find("no answer to PING", at + 1))
    ++n;
  return n;
}
std::size_t drops(Recorder& listener) {
  const auto seen = listener.states_seen();
  return static_cast<std::size_t>(
      std::count(seen.begin(), seen.end(), notify::BusState::reconnecting));
}

// An ephemeral event that `bus` publishes for `user` is the first message `listener` gets.
void check_round_trip(notify::RedisBus& bus, Recorder& listener, const std::string& user) {
  std::error_code ec;
  bus.publish({user, false, notify::Event::message("typing", "", "{}", 0)}, ec);
  CHECK_FALSE(ec);
  CHECK(eventually([&] {
    const auto messages = listener.taken();
    return messages.size() == 1 && messages[0].user == user;
  }));
}

TEST_CASE("redis bus: a Redis loading its data after a restart is not taken for a dead one") {
  testredis::RedisServer server(false, slow_load_options());
  NOTIFY_REQUIRE_REDIS(server);
  const auto reports = std::make_shared<Reports>();
  // Several checks while it loads.
  notify::RedisBus bus(watchful_options(server, "loading:", 300ms, reports));
  Recorder listener;
  bus.start(listener);
  REQUIRE(bus.state() == notify::BusState::connected);
  bus.subscribe("ann");

  SlowRestart restart(server);
  const bool loading = restart.loading();
  // The bus is back while the data loads, and stays: its PINGs are answered LOADING. (On a
  // machine loaded by other suites, a PING answered late in the slow load may still read as
  // "no answer", and drop the connection: only the LOADING answer is what this is about.)
  const bool back = loading && eventually([&] { return listener.states_seen().size() >= 3; });
  REQUIRE(loading);
  REQUIRE(restart.started());
  REQUIRE(back);
  {
    const auto log = reports->all();
    INFO("reported: " << log);
    CHECK(log.find("error reply: LOADING") == std::string::npos);
    // The kill, and only late answers besides (a drop for one may not be recorded yet).
    const auto dropped = drops(listener);
    CHECK(dropped >= 1);
    CHECK(dropped <= 1 + unanswered_pings(log));
  }
  REQUIRE(eventually([&] { return bus.state() == notify::BusState::connected; }));
  check_round_trip(bus, listener, "ann");
  bus.stop();
}

TEST_CASE("redis bus: another client's script running too long (BUSY) drops no subscription") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  bool sharded = false;
  SUBCASE("SUBSCRIBE") {}
  SUBCASE("SSUBSCRIBE") {
    sharded = true;
  }
  CAPTURE(sharded);
  // Past 50 ms a script makes Redis answer other clients BUSY (5 s by default).
  REQUIRE(server.command("CONFIG SET busy-reply-threshold 50") == "+OK\r\n");
  const auto reports = std::make_shared<Reports>();
  // A PING unanswered until the next one drops the connection: 300 ms leaves a loaded
  // machine room to answer (BUSY answers come within milliseconds).
  auto options = watchful_options(server, "busy:", 300ms, reports);
  options.sharded = sharded;
  notify::RedisBus bus(options);
  Recorder listener;
  bus.start(listener);
  REQUIRE(bus.state() == notify::BusState::connected);
  bus.subscribe("ann");
  REQUIRE(eventually([&] { return subscribers(server, "busy:u:ann", sharded) == 1; }));

  // While another client's script makes Redis answer BUSY: health checks, a user who comes,
  // one who goes.
  LongScript script(server);
  REQUIRE(script.start());
  bus.subscribe("bob");
  bus.unsubscribe("ann");
  std::this_thread::sleep_for(2s);
  REQUIRE(script.kill());

  // Both changes were refused (INFO is refused too while it is busy), and, unless a loaded
  // machine held the bus's thread for the whole time, so were its PINGs (one is the test's)...
  MESSAGE("PINGs refused: " << rejected_calls(server, "ping"));
  CHECK(rejected_calls(server, sharded ? "ssubscribe" : "subscribe") >= 1);
  CHECK(rejected_calls(server, sharded ? "sunsubscribe" : "unsubscribe") >= 1);
  // ...and the changes made once it is over.
  REQUIRE(eventually([&] {
    return subscribers(server, "busy:u:bob", sharded) == 1 &&
           subscribers(server, "busy:u:ann", sharded) == 0;
  }));
  REQUIRE(eventually([&] { return bus.state() == notify::BusState::connected; }));
  check_round_trip(bus, listener, "bob");

  // The old bus dropped the connection at the first BUSY ("error reply: BUSY ...", its first
  // report) and met BUSY again subscribing anew. This one stays, on the same connection; on a
  // machine loaded by other suites a PING answered late may still read as "no answer" and
  // drop it (as in the LOADING case above), which this case does not count against the bus.
  const auto log = reports->all();
  INFO("reported: " << log);
  CHECK(log.substr(0, log.find('\n')).find("BUSY") == std::string::npos);
  const auto unanswered = unanswered_pings(log);
  CHECK(drops(listener) <= unanswered);
  if (unanswered == 0) {
    CHECK(listener.states_seen() == std::vector<notify::BusState>{notify::BusState::connected});
    CHECK(listener.recovered == 1);
    CHECK(listener.subscriptions_confirmed() == std::vector<std::string>{"ann", "bob"});
    CHECK(log.find("BUSY") == std::string::npos);
  }
  bus.stop();
}

TEST_CASE("redis bus: publish fails with bus_unavailable while Redis is away") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  notify::RedisBusOptions options;
  options.redis = options_for(server, "away:");
  options.on_error = [](std::string_view) {};
  notify::RedisBus bus(options);
  Recorder listener;
  bus.start(listener);
  REQUIRE(bus.state() == notify::BusState::connected);
  auto event = notify::Event::message("typing", "", "{}", 0);
  std::error_code ec;
  bus.publish({"u", false, event}, ec);
  CHECK_FALSE(ec);
  server.kill();
  REQUIRE(eventually([&] { return bus.state() == notify::BusState::reconnecting; }));
  bus.publish({"u", false, event}, ec);
  CHECK(ec == notify::errc::bus_unavailable);
  CHECK_THROWS_AS(bus.publish(notify::Envelope{"u", false, event}), std::system_error);
  REQUIRE(server.start());
  REQUIRE(eventually([&] { return bus.state() == notify::BusState::connected; }));
  CHECK(listener.recovered >= 2);  // the first connection, and after the restart
  bus.publish({"u", false, event}, ec);
  CHECK_FALSE(ec);
  CHECK(listener.states_seen() == std::vector<notify::BusState>{notify::BusState::connected,
                                                                notify::BusState::reconnecting,
                                                                notify::BusState::connected});
  bus.stop();
}

// Two hubs with one MemoryStore (the store a fleet shares) and a RedisBus each, so that
// every notification travels as a bus publish.
struct SharedStoreFleet {
  std::shared_ptr<notify::MemoryStore> store = std::make_shared<notify::MemoryStore>();
  std::vector<std::shared_ptr<notify::RedisBus>> buses;
  std::vector<std::unique_ptr<notify::NotificationHub>> hubs;

  SharedStoreFleet(IoThread& io, const testredis::RedisServer& server, const std::string& prefix,
                   std::chrono::milliseconds command_timeout, BusThread where = BusThread::own) {
    for (int i = 0; i < 2; ++i) {
      notify::RedisBusOptions options;
      options.redis = options_for(server, prefix);
      options.redis.command_timeout = command_timeout;
      options.on_error = [](std::string_view) {};
      if (where == BusThread::host)
        options.executor = io.io.get_executor();
      buses.push_back(std::make_shared<notify::RedisBus>(options));
      hubs.push_back(std::make_unique<notify::NotificationHub>(io.io.get_executor(), hub_options(),
                                                               store, buses.back()));
      await_connected(*buses.back(), where);
    }
  }
  ~SharedStoreFleet() {
    for (auto& hub : hubs)
      hub->stop();
  }
};

TEST_CASE("redis bus: publish() returns without waiting for Redis, and order is kept") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  SharedStoreFleet fleet(io, server, "nowait:", 20s);
  Client near(io.io, *fleet.hubs[0], "u");
  Client far(io.io, *fleet.hubs[1], "u");
  REQUIRE(eventually([&] { return subscribers(server, "nowait:u:u") == 2; }));
  REQUIRE(eventually([&] { return has_init({&near, &far}); }));
  // Both instances have handled their subscriptions.
  std::vector<std::string> ids{fleet.hubs[0]->publish(draft("u", "first"))};
  REQUIRE(eventually([&] { return near.of_type("notification").size() == 1; }));
  REQUIRE(eventually([&] { return far.of_type("notification").size() == 1; }));
  // Redis holds every PUBLISH until it is unpaused: a publish() that waited for the reply
  // would not return before then.
  REQUIRE(server.command("CLIENT PAUSE 20000 WRITE") == "+OK\r\n");
  for (int i = 0; i < 100; ++i)
    ids.push_back(fleet.hubs[0]->publish(draft("u", std::to_string(i))));
  CHECK(near.of_type("notification").size() == 1);
  CHECK(far.of_type("notification").size() == 1);
  REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");
  for (auto* client : {&near, &far})
    check_holds_exactly(*client, ids);
}

TEST_CASE("redis bus: publishes lost with the publishing connection are repaired everywhere") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const auto where : both_bus_threads) {
    const std::string bus_thread = name_of(where);
    CAPTURE(bus_thread);
    const std::string prefix = where == BusThread::own ? "lost:" : "losthost:";
    IoThread io;
    SharedStoreFleet fleet(io, server, prefix, 20s, where);
    Client near(io.io, *fleet.hubs[0], "u");
    Client far(io.io, *fleet.hubs[1], "u");
    REQUIRE(eventually([&] { return subscribers(server, prefix + "u:u") == 2; }));
    REQUIRE(eventually([&] { return has_init({&near, &far}); }));
    fleet.hubs[0]->publish(draft("u", "before"));
    REQUIRE(eventually([&] { return far.of_type("notification").size() == 1; }));

    // Held by the pause, then dropped with the connection that sent them: Redis never runs
    // these PUBLISHes. The subscriber connections (type pubsub) stay.
    REQUIRE(server.command("CLIENT PAUSE 20000 WRITE") == "+OK\r\n");
    for (int i = 0; i < 20; ++i)
      fleet.hubs[0]->publish(draft("u", "lost " + std::to_string(i)));
    REQUIRE(eventually([&] {
      return server.command("CLIENT LIST TYPE normal").find("cmd=publish") != std::string::npos;
    }));
    CHECK(server.command("CLIENT KILL TYPE normal") == ":2\r\n");  // the two publishers
    REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");

    // Until the publishing connection is back, publish() fails, but the notification is in the
    // store: the repair brings it too.
    REQUIRE(eventually([&] {
      try {
        fleet.hubs[0]->publish(draft("u", "after"));
        return true;
      } catch (const std::system_error&) {
        return false;
      }
    }));
    const auto ids = stored_ids(*fleet.store, "u");  // the ones refused meanwhile too
    CHECK(ids.size() >= 22);
    for (auto* client : {&near, &far})
      check_holds_exactly(*client, ids);
  }
}

TEST_CASE("redis bus: a notification stored while its instance's bus was away reaches the others") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  SharedStoreFleet fleet(io, server, "refused:", 20s);
  Client a_client(io.io, *fleet.hubs[0], "u");
  Client b_client(io.io, *fleet.hubs[1], "u");
  Client b_other(io.io, *fleet.hubs[1], "other");  // B's subscriber: broadcast, u and other
  REQUIRE(eventually([&] { return subscribers(server, "refused:u:other") == 1; }));
  REQUIRE(eventually([&] { return subscribers(server, "refused:u:u") == 2; }));
  REQUIRE(eventually([&] { return has_init({&a_client, &b_client, &b_other}); }));

  // Drop B's subscriber connection only (it is the one with three channels), and publish on
  // B until a publish is refused: its notification is in the store, and A was not told.
  bool refused = false;
  for (int attempt = 0; attempt < 20 && !refused; ++attempt) {
    REQUIRE(eventually([&] { return fleet.buses[1]->state() == notify::BusState::connected; }));
    const auto list = server.command("CLIENT LIST TYPE pubsub");
    const auto at = list.find(" sub=3 ");
    REQUIRE(at != std::string::npos);
    const auto line = list.rfind("id=", at);
    const auto id = std::atoll(list.c_str() + line + 3);
    REQUIRE(server.command("CLIENT KILL ID " + std::to_string(id)) == ":1\r\n");
    for (int i = 0; i < 100 && !refused; ++i) {
      try {
        fleet.hubs[1]->publish(draft("u", "while away " + std::to_string(i)));
      } catch (const std::system_error& e) {
        CHECK(e.code() == notify::errc::bus_unavailable);
        refused = true;
      }
      std::this_thread::sleep_for(1ms);
    }
  }
  REQUIRE(refused);
  REQUIRE(eventually([&] { return fleet.buses[1]->state() == notify::BusState::connected; }));
  const auto ids = stored_ids(*fleet.store, "u");
  for (auto* client : {&a_client, &b_client})
    check_holds_exactly(*client, ids);
}

TEST_CASE("redis bus: sharded (SPUBLISH): a publish and a repair request reach another bus") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  Recorder a_listener, b_listener;
  notify::RedisBusOptions options;
  options.redis = options_for(server, "shard:");
  options.redis.command_timeout = 20s;
  options.sharded = true;
  options.on_error = [](std::string_view) {};
  notify::RedisBus a(options), b(options);
  a.start(a_listener);
  b.start(b_listener);
  REQUIRE(a.state() == notify::BusState::connected);
  REQUIRE(b.state() == notify::BusState::connected);
  b.subscribe("s");
  REQUIRE(eventually([&] {
    return server.command("PUBSUB SHARDNUMSUB shard:u:s").find(":1\r\n") != std::string::npos;
  }));
  a.publish({"s", false, notify::Event::message("notification", "7", "{}", 7)});
  REQUIRE(eventually([&] { return b_listener.taken().size() == 1; }));
  CHECK(b_listener.taken()[0].user + "/" + b_listener.taken()[0].event->id() == "s/7");

  // A publish lost with A's publishing connection: B is asked to repair.
  const int before = b_listener.recovered;
  REQUIRE(server.command("CLIENT PAUSE 20000 WRITE") == "+OK\r\n");
  a.publish({"s", false, notify::Event::message("notification", "8", "{}", 8)});
  REQUIRE(eventually([&] {
    return server.command("CLIENT LIST TYPE normal").find("cmd=spublish") != std::string::npos;
  }));
  // The two publishing connections; the subscribers (type pubsub) stay.
  CHECK(server.command("CLIENT KILL TYPE normal") == ":2\r\n");
  REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");
  REQUIRE(eventually([&] { return b_listener.recovered > before; }));
  CHECK(b_listener.taken().size() == 1);  // "8" was not sent again
  a.stop();
  b.stop();
}

TEST_CASE("redis bus: a bus started while Redis is down connects when it comes up") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  server.kill();
  IoThread io;
  Instance a(io, server, "late:");
  CHECK(a.bus->state() == notify::BusState::reconnecting);
  // The store is down: the first read, on the store thread, fails and closes the connection
  // (its client would reconnect) instead of leaving it registered without an `init`.
  a.hub->set_error_handler([](std::string_view) {});
  Client b(io.io, *a.hub, "bob");
  REQUIRE(eventually([&] { return b.transport->closed(); }));
  CHECK(b.of_type("init").empty());
  CHECK(a.hub->connection_count("bob") == 0);
  CHECK(a.hub->metrics().handler_errors == 1);
  REQUIRE(server.start());
  REQUIRE(eventually([&] { return a.bus->state() == notify::BusState::connected; }));
  Client d(io.io, *a.hub, "dan");
  REQUIRE(eventually([&] { return d.of_type("init").size() == 1; }));
  REQUIRE(eventually([&] {
    return server.command("PUBSUB NUMSUB late:u:dan").find(":1\r\n") != std::string::npos;
  }));
  const auto id = a.hub->publish(draft("dan"));
  REQUIRE(eventually([&] { return d.of_type("notification").size() == 1; }));
  CHECK(d.of_type("notification")[0].id == id);
}

// --- a bus on the host's executor -----------------------------------------------------

namespace {

// Records the thread each message arrives on; on_message (when set) runs inside the callback.
struct ThreadRecorder : notify::BusListener {
  std::mutex mutex;
  std::vector<std::thread::id> threads;
  std::function<void()> on_message;
  std::atomic<int> messages{0};
  void on_bus_message(const notify::Envelope&) override {
    {
      std::lock_guard lock(mutex);
      threads.push_back(std::this_thread::get_id());
    }
    if (on_message)
      on_message();
    ++messages;
  }
  void on_bus_recovered() override {}
};

notify::RedisBusOptions host_bus_options(const testredis::RedisServer& server,
                                         const std::string& prefix,
                                         const asio::any_io_executor& executor) {
  notify::RedisBusOptions options;
  options.redis = options_for(server, prefix);
  options.on_error = [](std::string_view) {};
  options.executor = executor;
  return options;
}

// A bus on a thread of its own that sends ephemeral messages to the bus under test.
struct Sender {
  Recorder listener;
  notify::RedisBus bus;
  Sender(const testredis::RedisServer& server, const std::string& prefix)
      : bus([&] {
          notify::RedisBusOptions options;
          options.redis = options_for(server, prefix);
          return options;
        }()) {
    bus.start(listener);
  }
  ~Sender() { bus.stop(); }
  void typing(const std::string& user) {
    bus.publish({user, false, notify::Event::message("typing", "", "{}", 0)});
  }
};

// Starts `bus` on a running executor and waits until it is subscribed to user "u".
void start_subscribed(notify::RedisBus& bus, notify::BusListener& listener,
                      const testredis::RedisServer& server, const std::string& prefix) {
  bus.start(listener);
  REQUIRE(eventually([&] { return bus.state() == notify::BusState::connected; }));
  bus.subscribe("u");
  REQUIRE(eventually([&] { return subscribers(server, prefix + "u:u") == 1; }));
}

// Numbered ephemeral messages to user "v": published on `bus`, received by `other`.
constexpr int numbered_count = 150;

void listen_for_numbered(Sender& other, const testredis::RedisServer& server,
                         const std::string& prefix) {
  other.bus.subscribe("v");
  REQUIRE(eventually([&] { return subscribers(server, prefix + "u:v") == 1; }));
}

void publish_numbered(notify::RedisBus& bus) {
  for (int i = 0; i < numbered_count; ++i)
    bus.publish({"v", false, notify::Event::message("typing", "", std::to_string(i), 0)});
}

void check_numbered(Sender& other) {
  REQUIRE(eventually([&] { return other.listener.taken().size() == numbered_count; }));
  const auto taken = other.listener.taken();
  for (int i = 0; i < numbered_count; ++i)
    CHECK(taken[static_cast<std::size_t>(i)].event->data() == std::to_string(i));
}

}  // namespace

TEST_CASE(
    "redis bus: on a host's executor, start() does not wait; callbacks run on that executor") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  asio::io_context io;
  auto options = host_bus_options(server, "exec:", io.get_executor());
  // A start() that waited for the first connection would wait this long: nothing runs `io`
  // yet, so nothing can connect.
  options.redis.connect_timeout = 120s;
  notify::RedisBus bus(options);
  ThreadRecorder listener;
  auto started = std::async(std::launch::async, [&] { bus.start(listener); });
  REQUIRE(started.wait_for(60s) == std::future_status::ready);
  CHECK(bus.state() == notify::BusState::reconnecting);
  std::error_code ec;
  bus.publish({"u", false, notify::Event::message("typing", "", "{}", 0)}, ec);
  CHECK(ec == notify::errc::bus_unavailable);

  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  const auto io_thread = runner.get_id();
  REQUIRE(eventually([&] { return bus.state() == notify::BusState::connected; }));
  bus.subscribe("u");
  REQUIRE(eventually([&] { return subscribers(server, "exec:u:u") == 1; }));

  Sender other(server, "exec:");
  for (int i = 0; i < 50; ++i)
    other.typing("u");
  REQUIRE(eventually([&] { return listener.messages == 50; }));
  {
    std::lock_guard lock(listener.mutex);
    for (const auto& id : listener.threads)
      CHECK(id == io_thread);
  }
  bus.stop();
  work.reset();
  runner.join();  // the bus's connections closed: nothing of it is left pending
}

TEST_CASE(
    "redis bus: on a host's executor, stop() waits for a running callback; none starts after") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  auto bus = std::make_unique<notify::RedisBus>(
      host_bus_options(server, "execstop:", io.io.get_executor()));
  ThreadRecorder listener;
  std::atomic<bool> inside{false};
  std::atomic<bool> finished{false};
  listener.on_message = [&] {
    if (listener.messages > 0)
      return;
    inside = true;
    std::this_thread::sleep_for(300ms);
    finished = true;
  };
  start_subscribed(*bus, listener, server, "execstop:");
  Sender other(server, "execstop:");
  other.typing("u");
  REQUIRE(eventually([&] { return inside.load(); }));
  bus->stop();  // from this thread, while the io thread is inside the callback
  CHECK(finished);
  const int seen = listener.messages;
  for (int i = 0; i < 20; ++i)
    other.typing("u");
  std::this_thread::sleep_for(300ms);
  CHECK(listener.messages == seen);
  CHECK(bus->state() == notify::BusState::stopped);
  // Destroyed while its connections' handlers are still pending on the running context.
  bus.reset();
  REQUIRE(eventually([&] { return subscribers(server, "execstop:u:u") == 0; }));
}

TEST_CASE(
    "redis bus: on a host's executor run by three threads, callbacks do not overlap and keep "
    "order; publishes from several threads arrive in each one's order") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> runners;
  for (int i = 0; i < 3; ++i)
    runners.emplace_back([&] { io.run(); });

  // Flags two callbacks running at once, and keeps the messages' data in arrival order.
  struct OneAtATime : notify::BusListener {
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
    std::mutex mutex;
    std::vector<std::string> data;
    void enter() {
      if (inside.fetch_add(1) != 0)
        overlapped = true;
      std::this_thread::yield();
    }
    void leave() { inside.fetch_sub(1); }
    void on_bus_message(const notify::Envelope& e) override {
      enter();
      {
        std::lock_guard lock(mutex);
        data.push_back(e.event->data());
      }
      leave();
    }
    void on_bus_subscribed(std::string_view) override {
      enter();
      leave();
    }
    void on_bus_recovered() override {
      enter();
      leave();
    }
    std::size_t size() {
      std::lock_guard lock(mutex);
      return data.size();
    }
  } listener;
  notify::RedisBus bus(host_bus_options(server, "execmt:", io.get_executor()));
  start_subscribed(bus, listener, server, "execmt:");
  Sender other(server, "execmt:");
  other.bus.subscribe("v");
  REQUIRE(eventually([&] { return subscribers(server, "execmt:u:v") == 1; }));

  constexpr int count = 400;
  // Subscriptions change while messages arrive (each confirmation is a callback too).
  std::thread churn([&] {
    for (int i = 0; i < 200; ++i) {
      bus.subscribe("c" + std::to_string(i % 20));
      bus.unsubscribe("c" + std::to_string(i % 20));
    }
  });
  // Two threads publish on the bus under test, each its own numbered stream.
  auto publish_stream = [&](const std::string& name) {
    for (int i = 0; i < count; ++i)
      bus.publish(
          {"v", false,
           notify::Event::message("typing", "", "\"" + name + std::to_string(i) + "\"", 0)});
  };
  std::thread first(publish_stream, "a");
  std::thread second(publish_stream, "b");
  for (int i = 0; i < count; ++i)
    other.bus.publish({"u", false, notify::Event::message("typing", "", std::to_string(i), 0)});
  churn.join();
  first.join();
  second.join();

  REQUIRE(eventually([&] { return listener.size() == count; }));
  CHECK_FALSE(listener.overlapped);
  {
    std::lock_guard lock(listener.mutex);
    for (int i = 0; i < count; ++i)
      CHECK(listener.data[static_cast<std::size_t>(i)] == std::to_string(i));
  }
  REQUIRE(eventually([&] { return other.listener.taken().size() == 2 * count; }));
  int next_a = 0, next_b = 0;
  for (const auto& e : other.listener.taken()) {
    const auto& d = e.event->data();
    if (d.rfind("\"a", 0) == 0)
      CHECK(d == "\"a" + std::to_string(next_a++) + "\"");
    else
      CHECK(d == "\"b" + std::to_string(next_b++) + "\"");
  }
  CHECK(next_a == count);
  CHECK(next_b == count);
  bus.stop();
  work.reset();
  for (auto& t : runners)
    t.join();
}

TEST_CASE("redis bus: on a host's executor, stop() from inside a callback returns") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  notify::RedisBus bus(host_bus_options(server, "execself:", io.io.get_executor()));
  ThreadRecorder listener;
  std::atomic<bool> stopped_inside{false};
  listener.on_message = [&] {
    bus.stop();
    stopped_inside = true;
  };
  start_subscribed(bus, listener, server, "execself:");
  Sender other(server, "execself:");
  other.typing("u");
  other.typing("u");
  REQUIRE(eventually([&] { return stopped_inside.load(); }));
  CHECK(bus.state() == notify::BusState::stopped);
  // The io thread goes on, and the bus's connections close.
  std::promise<void> ran;
  asio::post(io.io, [&] { ran.set_value(); });
  CHECK(ran.get_future().wait_for(5s) == std::future_status::ready);
  REQUIRE(eventually([&] { return subscribers(server, "execself:u:u") == 0; }));
  CHECK(listener.messages == 1);
}

TEST_CASE(
    "redis bus: publishes made while a reply is awaited wait in the bus, then leave together; "
    "with gather_publishes off each leaves at once") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  for (const auto where : both_bus_threads) {
    for (const bool gather : {true, false}) {
      const std::string bus_thread = name_of(where);
      CAPTURE(bus_thread);
      CAPTURE(gather);
      const std::string prefix =
          std::string(where == BusThread::own ? "gather" : "gatherhost") + (gather ? ":" : "off:");
      IoThread io;
      auto options = host_bus_options(server, prefix, io.io.get_executor());
      if (where == BusThread::own)
        options.executor = {};
      options.gather_publishes = gather;
      // No log of session ends: its read (XRANGE, on the publishing connection once
      // connected) could still await its reply when the publishes start, and they would
      // gather behind it and reach Redis together whatever gather_publishes says.
      options.session_end_retention = std::chrono::seconds(0);
      notify::RedisBus bus(options);
      Recorder listener;
      bus.start(listener);
      await_connected(bus, where);
      Sender other(server, prefix);
      listen_for_numbered(other, server, prefix);

      // Redis holds the first PUBLISH unanswered. Its query buffer for the connection (qbuf)
      // holds what it has received but not run: the other 149, if they were sent.
      REQUIRE(server.command("CLIENT PAUSE 20000 WRITE") == "+OK\r\n");
      publish_numbered(bus);
      const auto publisher = [&] {
        const auto list = server.command("CLIENT LIST TYPE normal");
        const auto at = list.find("cmd=publish");
        if (at == std::string::npos)
          return std::string();
        const auto begin = list.rfind('\n', at) + 1;  // npos + 1 == 0 on the first line
        return list.substr(begin, list.find('\n', at) - begin);
      };
      REQUIRE(eventually([&] { return !publisher().empty(); }));
      std::this_thread::sleep_for(200ms);
      CHECK((publisher().find(" qbuf=0 ") != std::string::npos) == gather);
      REQUIRE(server.command("CLIENT UNPAUSE") == "+OK\r\n");
      check_numbered(other);
    }
  }
}

TEST_CASE("redis bus: on a host's executor, what one handler publishes takes two sends") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  IoThread io;
  notify::RedisBus bus(host_bus_options(server, "execcork:", io.io.get_executor()));
  ThreadRecorder listener;
  start_subscribed(bus, listener, server, "execcork:");
  Sender other(server, "execcork:");
  listen_for_numbered(other, server, "execcork:");

  // Redis counts the reads it makes from its clients' sockets.
  const auto reads = [&] {
    const auto info = server.command("INFO stats");
    const auto at = info.find("total_reads_processed:");
    REQUIRE(at != std::string::npos);
    return std::stoull(info.substr(at + std::strlen("total_reads_processed:")));
  };
  const auto before = reads();
  std::promise<std::size_t> seen_inside;
  asio::post(io.io, [&] {
    publish_numbered(bus);
    // The first reply can only be read once this handler returns: the first message has left,
    // the others wait for it.
    std::this_thread::sleep_for(200ms);
    seen_inside.set_value(other.listener.taken().size());
  });
  auto inside = seen_inside.get_future();
  REQUIRE(inside.wait_for(5s) == std::future_status::ready);
  CHECK(inside.get() == 1);
  check_numbered(other);
  // The first PUBLISH, then ≈ 11 KiB that Redis reads at once (up to 16 KiB per read), and
  // the two INFO commands. One send per publish took it 22 to 41 reads here.
  CHECK(reads() - before <= 5);
}

TEST_CASE("redis bus: on a host's executor, a context destroyed without running again frees it") {
  testredis::RedisServer server;
  NOTIFY_REQUIRE_REDIS(server);
  auto io = std::make_unique<asio::io_context>();
  {
    notify::RedisBus bus(host_bus_options(server, "execgone:", io->get_executor()));
    Recorder listener;
    bus.start(listener);
    bus.subscribe("u");
    for (int i = 0; i < 500 && subscribers(server, "execgone:u:u") != 1; ++i)
      io->run_for(10ms);
    REQUIRE(subscribers(server, "execgone:u:u") == 1);
    // Destroyed while the context is not running: the close is left pending on it.
  }
  CHECK(subscribers(server, "execgone:u:u") == 1);
  io.reset();  // destroys what was pending, and the bus with it (ASan: no leak, no misuse)
  REQUIRE(eventually([&] { return subscribers(server, "execgone:u:u") == 0; }));
}

TEST_SUITE("redis-restart") {
  TEST_CASE(
      "redis bus: kill -9 of Redis mid-stream: every client ends with every notification once, in "
      "order") {
    testredis::RedisServer server(/*appendonly=*/true);
    NOTIFY_REQUIRE_REDIS(server);
    // With publish_appends the store's script publishes; without, every notification is a
    // pipelined bus publish, and those lost with the connection come back by the repair.
    // Without it, order across instances is not promised (docs/DEPLOYMENT.md), so one
    // instance publishes (from two threads). Instance b's bus runs on the hub's io_context.
    for (const bool publish_appends : {true, false}) {
      CAPTURE(publish_appends);
      const std::string prefix = publish_appends ? "k9:" : "k9bus:";
      IoThread io;
      Instance a(io, server, prefix, publish_appends, BusThread::own);
      Instance b(io, server, prefix, publish_appends, BusThread::host);
      const std::vector<std::string> users{"u0", "u1", "u2", "u3"};
      std::vector<std::unique_ptr<Client>> clients;
      for (const auto& u : users) {
        clients.push_back(std::make_unique<Client>(io.io, *a.hub, u));
        clients.push_back(std::make_unique<Client>(io.io, *b.hub, u));
      }
      REQUIRE(eventually([&] { return subscribers(server, prefix + "u:u3") == 2; }));
      REQUIRE(eventually([&] { return has_init(clients); }));

      // Publish a stream from both instances; a failed publish is retried until it succeeds.
      constexpr int total = 400;
      std::atomic<int> failures{0};
      std::atomic<int> done{0};
      std::mutex ids_mutex;
      std::map<std::string, std::vector<std::string>> published;  // user → ids
      auto publisher = [&](Instance& instance, int from) {
        for (int k = from; k < total; k += 2) {
          const auto& user = users[static_cast<std::size_t>(k) % users.size()];
          for (;;) {
            try {
              const auto id = instance.hub->publish(draft(user, std::to_string(k)));
              std::lock_guard lock(ids_mutex);
              published[user].push_back(id);
              break;
            } catch (const std::exception&) {
              ++failures;
              std::this_thread::sleep_for(20ms);
            }
          }
          if (k % 10 == 0) {
            std::string first;
            {
              std::lock_guard lock(ids_mutex);
              first = published[user].front();
            }
            try {
              instance.hub->mark_read(user, first);
            } catch (const std::exception&) {
              ++failures;  // Redis is away: this read simply did not happen
            }
          }
          ++done;
          std::this_thread::sleep_for(2ms);
        }
      };
      std::thread p1(publisher, std::ref(a), 0);
      std::thread p2(publisher, std::ref(publish_appends ? b : a), 1);
      REQUIRE(eventually([&] { return done >= total / 3; }));
      server.kill();  // SIGKILL
      std::this_thread::sleep_for(700ms);
      REQUIRE(server.start());
      p1.join();
      p2.join();
      CHECK(failures > 0);
      MESSAGE("publishes retried after failing while Redis was away: " << failures.load());

      // Ground truth: the store (the ids whose reply was lost but that were applied are in it
      // too).
      for (const auto& user : users) {
        const auto expected = stored_ids(*a.store, user);
        for (const auto& id : published[user])
          CHECK(std::find(expected.begin(), expected.end(), id) != expected.end());
        const auto unread = a.store->unread_count(user);
        for (auto& c : clients) {
          if (c->sink->user() != user)
            continue;
          CHECK(c->sink->is_open());
          const bool complete = eventually([&] {
            const auto s = c->state();
            return s.ids == expected && s.unread == unread;
          });
          const auto s = c->state();
          CAPTURE(user);
          CHECK(complete);
          CHECK(s.duplicates == 0);
          CHECK(s.in_order);
          CHECK(s.resets == 0);
          CHECK(joined(s.ids) == joined(expected));
          CHECK(s.unread == unread);
        }
      }
    }
  }
}

#endif
