// Shared by the notify::redis unit tests: a client connection model, an io_context thread,
// and the skip rule (no redis-server installed: each case says so and passes).
#pragma once

#if __has_include(<notify/redis_export.hpp>)
#define NOTIFY_TEST_WITH_REDIS 1

#include <notify/error.hpp>
#include <notify/hub.hpp>
#include <notify/redis_bus.hpp>
#include <notify/redis_store.hpp>
#include <notify/sse_sink.hpp>

#include "../support/redis_server.hpp"
#include "fixtures.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

// Ends the test case (passing) when redis-server is not installed.
#define NOTIFY_REQUIRE_REDIS(server)                                                   \
  do {                                                                                 \
    if (!(server).available()) {                                                       \
      MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)"); \
      return;                                                                          \
    }                                                                                  \
  } while (0)

namespace redistest {

using namespace std::chrono_literals;

// An io_context run by one thread until destroyed.
struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{asio::make_work_guard(io)};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

inline notify::RedisOptions options_for(const testredis::RedisServer& server,
                                        const std::string& prefix) {
  notify::RedisOptions o;
  o.port = server.port();
  o.prefix = prefix;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  // Generous: a connect on loopback is instant, but a loaded CI machine (a browser test
  // alongside, sanitizers) has stalled the test process for over a second.
  o.connect_timeout = 5000ms;
  return o;
}

inline notify::HubOptions hub_options() {
  return test::no_batching();
}

// One client connection over a RecordingTransport, and what a browser would make of it.
struct Client : test::SseClient {
  using test::SseClient::SseClient;

  // The client's model: the ids it holds in arrival order (a reset replaces them), how many
  // times it received each, and its unread badge.
  struct State {
    std::vector<std::string> ids;
    std::uint64_t unread = 0;
    int resets = 0;
    int duplicates = 0;
    bool in_order = true;
  };
  State state() const {
    State s;
    std::uint64_t last = 0;
    auto add = [&](const std::string& id) {
      const std::uint64_t seq = std::stoull(id);
      if (seq <= last) {
        s.in_order = false;
        for (const auto& have : s.ids)
          if (have == id)
            ++s.duplicates;
      }
      last = std::max(last, seq);
      s.ids.push_back(id);
    };
    for (const auto& e : events()) {
      if (e.type == "init" || e.type == "notifications:reset") {
        if (e.type == "notifications:reset")
          ++s.resets;
        const auto j = nlohmann::json::parse(e.data);
        s.ids.clear();
        last = e.id.empty() ? 0 : std::stoull(e.id);
        auto list = j.at("notifications");
        for (auto it = list.rbegin(); it != list.rend(); ++it)
          s.ids.push_back(it->at("id"));
        s.unread = j.at("unreadCount");
      } else if (e.type == "notification") {
        add(e.id);
        ++s.unread;
      } else if (e.type == "notification:read") {
        s.unread = nlohmann::json::parse(e.data).at("unreadCount");
      }
    }
    return s;
  }
};

inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

using test::draft;

// Runs `call` until it does not throw bus_unavailable, for up to `limit`: an ephemeral event
// or a session end is refused, not queued, while the bus reconnects, and on a machine loaded
// by other suites a health check answered late has made it reconnect. False when it never
// went; another exception propagates.
template <typename Call>
bool when_bus_available(Call&& call, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  return eventually(
      [&] {
        try {
          call();
          return true;
        } catch (const std::system_error& e) {
          if (e.code() != notify::errc::bus_unavailable)
            throw;
          return false;
        }
      },
      limit);
}

// What `call()` returns, or when it throws a failed check naming `what` and the message, and
// a default value (the REQUIREs after it say what is missing): for a call that must not
// throw in a case with a thread to join or a server to restore first.
template <typename Call>
auto or_failed_check(const char* what, Call&& call) -> std::invoke_result_t<Call> {
  try {
    return call();
  } catch (const std::exception& e) {
    const std::string message = e.what();  // doctest reads it later, on this thread
    FAIL_CHECK(std::string(what) << " threw: " << message);
    return {};
  }
}

// redis-server options under which a restart loads its data slowly (50 µs a key) and answers
// clients meanwhile, every KiB of its file: PING and most commands with LOADING.
inline std::vector<std::string> slow_load_options() {
  return {"--key-load-delay", "50", "--loading-process-events-interval-bytes", "1024"};
}

// Gives a server started with slow_load_options() 20,000 keys, saved, then kills it and
// starts it again on a thread of its own: a second or more of LOADING (more on a loaded
// machine). The destructor waits for the start (up to 60 s).
class SlowRestart {
 public:
  explicit SlowRestart(testredis::RedisServer& server) : server_(server) {
    server_.command("EVAL \"for i = 1, 20000 do redis.call('SET', 'filler:' .. i, i) end\" 0");
    saved_ = server_.command("DBSIZE") != ":0\r\n" && server_.command("SAVE") == "+OK\r\n";
    server_.kill();
    thread_ = std::thread([this] { started_ = server_.start(std::chrono::seconds(60)); });
  }
  ~SlowRestart() { started(); }
  SlowRestart(const SlowRestart&) = delete;
  SlowRestart& operator=(const SlowRestart&) = delete;

  // Whether the server says LOADING within 5 s (false: the data was not saved, or loaded
  // before anyone asked).
  bool loading() {
    return saved_ &&
           eventually([&] { return server_.command("PING").rfind("-LOADING", 0) == 0; }, 5s);
  }
  // Waits for the start; whether the server answers PING now.
  bool started() {
    if (thread_.joinable())
      thread_.join();
    return started_;
  }

 private:
  testredis::RedisServer& server_;
  bool saved_ = false;
  std::atomic<bool> started_{false};
  std::thread thread_;
};

// Whether the bus of every instance given (anything with a `bus`) is connected.
template <typename... Instances>
bool all_connected(const Instances&... instances) {
  return ((instances.bus->state() == notify::BusState::connected) && ...);
}

// Records what a RedisBus delivers, and the states it goes through.
struct Recorder : notify::BusListener {
  std::mutex mutex;
  std::vector<notify::Envelope> messages;
  std::vector<notify::BusState> states;
  std::vector<std::string> subscribed;  // on_bus_subscribed's users, in order
  std::atomic<int> recovered{0};
  void on_bus_message(const notify::Envelope& e) override {
    std::lock_guard lock(mutex);
    messages.push_back(e);
  }
  void on_bus_subscribed(std::string_view user) override {
    std::lock_guard lock(mutex);
    subscribed.emplace_back(user);
  }
  void on_bus_recovered() override { ++recovered; }
  void on_bus_state(notify::BusState s) override {
    std::lock_guard lock(mutex);
    states.push_back(s);
  }
  std::vector<notify::Envelope> taken() {
    std::lock_guard lock(mutex);
    return messages;
  }
  std::vector<notify::BusState> states_seen() {
    std::lock_guard lock(mutex);
    return states;
  }
  std::vector<std::string> subscriptions_confirmed() {
    std::lock_guard lock(mutex);
    return subscribed;
  }
};

// Another client's script, on a thread of its own from start() until kill(): once it has run
// for busy-reply-threshold, Redis answers other clients BUSY. It writes nothing (so SCRIPT
// KILL may end it) and ends by itself after 20 s. Redis serves other clients meanwhile once
// per 100,000 Lua instructions: the empty loop brings that round in ≈ 0.5 ms of CPU (a loop
// of TIME calls took 5-10 ms, and on a loaded machine its answers came too late for a health
// check).
class LongScript {
 public:
  explicit LongScript(const testredis::RedisServer& server) : server_(server) {}
  ~LongScript() { kill(); }
  LongScript(const LongScript&) = delete;
  LongScript& operator=(const LongScript&) = delete;

  // Starts it; true once Redis answers another client BUSY (within 10 s).
  bool start() {
    thread_ = std::thread([this] {
      server_.command(
          "EVAL \"local s = redis.call('time') repeat for i = 1, 100000 do end"
          " local n = redis.call('time') until n[1] - s[1] > 20 return 1\" 0",
          std::chrono::seconds(30));
    });
    return eventually([&] { return server_.command("PING").rfind("-BUSY", 0) == 0; },
                      std::chrono::seconds(10));
  }
  // Ends it and waits for its thread; true when SCRIPT KILL ended it.
  bool kill() {
    if (!thread_.joinable())
      return false;
    const bool killed = server_.command("SCRIPT KILL") == "+OK\r\n";
    thread_.join();
    return killed;
  }

 private:
  const testredis::RedisServer& server_;
  std::thread thread_;
};

// A number in `INFO section`: `field`'s value on the line of `name` ("cmdstat_evalsha:",
// "rejected_calls="); 0 when it is not there.
inline long info_number(const testredis::RedisServer& server, const std::string& section,
                        const std::string& name, const std::string& field) {
  const auto stats = server.command("INFO " + section);
  const auto line = stats.find(name);
  const auto at = line == std::string::npos ? line : stats.find(field, line);
  return at == std::string::npos ? 0 : std::atol(stats.c_str() + at + field.size());
}

// The count of `command`'s calls that Redis refused before running them (INFO commandstats).
inline long rejected_calls(const testredis::RedisServer& server, const std::string& command) {
  return info_number(server, "commandstats", "cmdstat_" + command + ":", "rejected_calls=");
}

// What a bus or a hub reports (RedisBusOptions::on_error, set_error_handler), one line each,
// for a test to read. Held by a shared_ptr that the handler keeps.
struct Reports {
  std::mutex mutex;
  std::string text;

  static std::function<void(std::string_view)> into(std::shared_ptr<Reports> reports) {
    return [reports = std::move(reports)](std::string_view what) {
      std::lock_guard lock(reports->mutex);
      reports->text.append(what).push_back('\n');
    };
  }
  std::string all() {
    std::lock_guard lock(mutex);
    return text;
  }
};

// The ids of a user's notifications in the store, oldest first.
inline std::vector<std::string> stored_ids(notify::Store& store, const std::string& user) {
  std::vector<std::string> ids;
  for (const auto& n : store.list(user, false, 1000))
    ids.insert(ids.begin(), n.id);
  return ids;
}

// Ids in one string, so that a failed comparison shows which are missing.
inline std::string joined(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids)
    out += id + " ";
  return out;
}

// The client ends up with exactly `ids`, in order, each once.
inline void check_holds_exactly(const Client& client, const std::vector<std::string>& ids) {
  REQUIRE(eventually([&] { return client.state().ids.size() >= ids.size(); }));
  const auto state = client.state();
  CHECK(joined(state.ids) == joined(ids));
  CHECK(state.duplicates == 0);
  CHECK(state.in_order);
}

// A hub whose RedisBus and RedisStore find Redis as `redis` says (sentinels, a cluster),
// reconnecting quickly; what the bus and the hub report is kept, to be shown when a check
// fails.
struct FleetInstance {
  std::shared_ptr<notify::RedisBus> bus;
  std::shared_ptr<notify::RedisStore> store;
  std::unique_ptr<notify::NotificationHub> hub;
  std::shared_ptr<Reports> reports = std::make_shared<Reports>();

  std::string reported() const { return reports->all(); }

  struct Settings {
    bool sharded = false;         // SSUBSCRIBE/SPUBLISH (the bus's and the store's)
    bool publish_appends = true;  // the store's scripts publish (else the hub, on the bus)
    bool session_end_log = true;  // RedisBusOptions::session_end_retention: 900 s, or 0
  };

  FleetInstance(IoThread& io, notify::RedisOptions redis, Settings settings) {
    const auto [sharded, publish_appends, session_end_log] = settings;
    redis.backoff_initial = 20ms;
    redis.backoff_max = 200ms;
    redis.connect_timeout = 5000ms;
    notify::RedisBusOptions bus_options;
    bus_options.redis = redis;
    // A failover closes the connections (kill -9): the PING is not what notices it. Under
    // load (sanitizers beside other suites) a 500 ms interval took a slow answer for a dead
    // server and reconnected in the middle of a check.
    bus_options.health_check_interval = 2000ms;
    bus_options.sharded = sharded;
    if (!session_end_log)
      bus_options.session_end_retention = std::chrono::seconds(0);
    const auto note = Reports::into(reports);
    bus_options.on_error = note;
    bus = std::make_shared<notify::RedisBus>(bus_options);
    notify::RedisStoreOptions store_options;
    store_options.redis = redis;
    // When the store's script publishes, a publish that fails was not stored, so it may be
    // retried.
    store_options.publish_appends = publish_appends;
    store_options.sharded = sharded;
    store = std::make_shared<notify::RedisStore>(store_options);
    hub =
        std::make_unique<notify::NotificationHub>(io.io.get_executor(), hub_options(), store, bus);
    hub->set_error_handler(note);
  }
  FleetInstance(IoThread& io, notify::RedisOptions redis)
      : FleetInstance(io, std::move(redis), Settings{}) {}
  ~FleetInstance() { hub->stop(); }

  // Publishes, again and again while Redis is away (a failover under way); the id.
  std::string publish_when_possible(const std::string& user, const std::string& title) {
    std::string id;
    const bool published = eventually([&] {
      try {
        id = hub->publish(draft(user, title));
        return true;
      } catch (const std::system_error&) {
        return false;
      }
    });
    REQUIRE(published);
    return id;
  }

  // end_sessions(), again while the bus's publishing connection is away (bus_unavailable:
  // a failover under way, or a health check missed on a loaded machine).
  void end_sessions_when_possible(const std::string& user, const std::string& reason) {
    REQUIRE(when_bus_available([&] { hub->end_sessions(user, reason); }));
  }
};

// Keeps a killed server's port from another test's redis-server until destroyed: listens
// there, and closes what connects at once, so that a connection fails fast. (A sentinel would
// take a server that got the port for the old primary back, and make it a replica; a cluster's
// answer, stale until its failover, would send the fleet to it.)
class PortHolder {
 public:
  explicit PortHolder(std::uint16_t port) : acceptor_(io_) {
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));  // the dead server's sockets
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), port});
    acceptor_.listen();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~PortHolder() {
    io_.stop();
    thread_.join();
  }
  PortHolder(const PortHolder&) = delete;
  PortHolder& operator=(const PortHolder&) = delete;

 private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket) {
      if (!ec)
        accept();  // the socket closes as it goes
    });
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

// Two instances that find Redis through `redis` (sentinels, a cluster's nodes) across a
// failover: a client of one gets what the other publishes before and after it, each once
// and in order, and a new connection then reads both from the new primary. `fail_over()`
// kills `primary` and returns once the new one is known, with what must live until the check
// ends (a PortHolder).
inline void check_fleet_across_failover(const notify::RedisOptions& redis,
                                        testredis::RedisServer& primary,
                                        const std::function<std::shared_ptr<void>()>& fail_over) {
  IoThread io;
  FleetInstance a(io, redis);
  FleetInstance b(io, redis);
  REQUIRE(eventually([&] { return all_connected(a, b); }));
  Client client(io.io, *b.hub, "hana");
  REQUIRE(eventually([&] { return client.of_type("init").size() == 1; }));
  const auto first = a.publish_when_possible("hana", "before the failover");
  REQUIRE(eventually([&] { return client.state().ids.size() == 1; }));
  // The replica has it before the primary goes (each WAIT within the helper's 1 s read).
  REQUIRE(eventually([&] { return primary.command("WAIT 1 500") == ":1\r\n"; }));

  const auto kept = fail_over();
  const auto second = a.publish_when_possible("hana", "after the failover");
  INFO("reported by a:\n" << a.reported() << "reported by b:\n" << b.reported());
  const auto received = [&] {
    std::string out;
    for (const auto& e : client.events())
      out += e.type + " " + e.id + "; ";
    return out;
  };
  INFO("b's client received: " << received());
  REQUIRE(eventually([&] { return client.state().ids.size() == 2; }));
  const auto state = client.state();
  CHECK(state.ids == std::vector<std::string>{first, second});
  CHECK(state.duplicates == 0);
  CHECK(state.in_order);
  CHECK(state.unread == 2);
  // (Its publishing connection may still be on its way back.)
  CHECK(eventually([&] { return b.bus->state() == notify::BusState::connected; }));
  // A new connection reads both from the promoted replica.
  Client later(io.io, *b.hub, "hana");
  REQUIRE(eventually([&] { return later.of_type("init").size() == 1; }));
  CHECK(later.state().ids == std::vector<std::string>{first, second});
}

}  // namespace redistest

#endif
