// Redis Sentinel: a connection refuses a server that a (stale) sentinel names but that is not
// the primary; and (TEST_SUITE "redis-restart", its own ctest entry, like the other kill -9
// cases) a fleet of two hubs finds its Redis through a real sentinel, and after kill -9 of the
// primary and the sentinel's failover goes on with the promoted replica, missing nothing.
#include "redis_fixtures.hpp"

#ifdef NOTIFY_TEST_WITH_REDIS

#include <notify/error.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <memory>
#include <string>

using namespace redistest;

namespace {

// Whether `reply` (raw RESP) contains `text`.
bool contains(const std::string& reply, const std::string& text) {
  return reply.find(text) != std::string::npos;
}

// The port the sentinel names for `master`, or 0.
int primary_port(const testredis::RedisServer& sentinel, const std::string& master) {
  // *2 $9 127.0.0.1 $N PORT
  const auto reply = sentinel.command("SENTINEL get-master-addr-by-name " + master);
  const auto last = reply.rfind("\r\n", reply.size() - 3);
  if (reply.rfind("*2", 0) != 0 || last == std::string::npos)
    return 0;
  return std::atoi(reply.c_str() + last + 2);
}

// Options that say where Redis is only through the sentinel at `sentinel_port`.
notify::RedisOptions via_sentinel(std::uint16_t sentinel_port, const std::string& master,
                                  const std::string& prefix) {
  notify::RedisOptions o;
  o.host = "no-such-host.invalid";  // only the sentinel may say where Redis is
  o.port = 1;
  o.sentinels = {{"127.0.0.1", sentinel_port}};
  o.sentinel_master = master;
  o.prefix = prefix;
  return o;
}

// A hub whose RedisBus and RedisStore know only the sentinel.
struct SentinelInstance {
  std::shared_ptr<notify::RedisBus> bus;
  std::shared_ptr<notify::RedisStore> store;
  std::unique_ptr<notify::NotificationHub> hub;
  // What the bus and the hub reported, shown when a check fails.
  std::shared_ptr<std::mutex> log_mutex = std::make_shared<std::mutex>();
  std::shared_ptr<std::string> log = std::make_shared<std::string>();

  std::string reported() const {
    std::lock_guard lock(*log_mutex);
    return *log;
  }

  SentinelInstance(IoThread& io, const testredis::RedisServer& sentinel,
                   const std::string& master) {
    auto redis = via_sentinel(sentinel.port(), master, "ha:");
    redis.backoff_initial = 20ms;
    redis.backoff_max = 200ms;
    redis.connect_timeout = 5000ms;
    notify::RedisBusOptions bus_options;
    bus_options.redis = redis;
    bus_options.health_check_interval = 500ms;
    const auto note = [mutex = log_mutex, log = log](std::string_view what) {
      std::lock_guard lock(*mutex);
      log->append(what).push_back('\n');
    };
    bus_options.on_error = note;
    bus = std::make_shared<notify::RedisBus>(bus_options);
    notify::RedisStoreOptions store_options;
    store_options.redis = redis;
    // The store's script publishes: a publish that fails was not stored, so it may be retried.
    store_options.publish_appends = true;
    store = std::make_shared<notify::RedisStore>(store_options);
    hub =
        std::make_unique<notify::NotificationHub>(io.io.get_executor(), hub_options(), store, bus);
    hub->set_error_handler(note);
  }
  ~SentinelInstance() { hub->stop(); }

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
};

// A stand-in for a sentinel whose answer is stale: it names `primary_port` as the primary of
// any name, to every connection, until destroyed.
class StaleSentinel {
 public:
  explicit StaleSentinel(std::uint16_t primary_port)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    const auto port = std::to_string(primary_port);
    answer_ = "*2\r\n$9\r\n127.0.0.1\r\n$" + std::to_string(port.size()) + "\r\n" + port + "\r\n";
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~StaleSentinel() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int asked() const { return asked_.load(); }

 private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket socket) {
      if (ec)
        return;
      auto s = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
      auto buffer = std::make_shared<std::array<char, 512>>();
      s->async_read_some(asio::buffer(*buffer), [this, s, buffer](std::error_code e, std::size_t) {
        if (e)
          return;
        ++asked_;
        asio::async_write(*s, asio::buffer(answer_), [s](std::error_code, std::size_t) {});
      });
      accept();
    });
  }

  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  std::string answer_;
  std::atomic<int> asked_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("redis sentinel: a connection refuses a server that is not the primary") {
  // The sentinel names a replica (its answer from before a failover): nothing is written there.
  testredis::RedisServer primary;
  NOTIFY_REQUIRE_REDIS(primary);
  testredis::RedisServer replica(false,
                                 {"--replicaof", "127.0.0.1", std::to_string(primary.port())});
  StaleSentinel stale(replica.port());
  notify::RedisStoreOptions options;
  options.redis = via_sentinel(stale.port(), "m", "stale:");
  notify::RedisStore store(options);
  try {
    store.list("u", false, 10);
    FAIL("a read from a replica was accepted");
  } catch (const notify::RedisError& e) {
    CHECK(std::string(e.what()).find("is not the primary") != std::string::npos);
  }
  CHECK(stale.asked() >= 1);

  notify::RedisBusOptions bus_options;
  bus_options.redis = options.redis;
  bus_options.redis.connect_timeout = 1000ms;
  std::vector<std::string> errors;
  std::mutex mutex;
  bus_options.on_error = [&](std::string_view what) {
    std::lock_guard lock(mutex);
    errors.emplace_back(what);
  };
  notify::RedisBus bus(bus_options);
  struct Quiet final : notify::BusListener {
    void on_bus_message(const notify::Envelope&) override {}
  } listener;
  bus.start(listener);
  REQUIRE(eventually([&] {
    std::lock_guard lock(mutex);
    return std::any_of(errors.begin(), errors.end(), [](const std::string& e) {
      return e.find("is not the primary") != std::string::npos;
    });
  }));
  CHECK(bus.state() != notify::BusState::connected);
  bus.stop();
}

TEST_CASE("redis sentinel: sentinels that require a password are asked with sentinel_password") {
  testredis::RedisServer primary;
  NOTIFY_REQUIRE_REDIS(primary);
  const auto sentinel =
      testredis::RedisServer::sentinel(primary.port(), "guarded", 500, "requirepass s3cret\n");
  notify::RedisStoreOptions options;
  options.redis = via_sentinel(sentinel->port(), "guarded", "pw:");
  {
    notify::RedisStore store(options);
    try {
      store.list("u", false, 10);
      FAIL("a sentinel that requires a password answered without one");
    } catch (const std::exception& e) {
      CHECK(std::string(e.what()).find("NOAUTH") != std::string::npos);
    }
  }
  options.redis.sentinel_password = "s3cret";
  notify::RedisStore store(options);
  CHECK(store.list("u", false, 10).empty());
  CHECK(store.unread_count("u") == 0);
}

TEST_SUITE("redis-restart") {
  TEST_CASE("redis sentinel: a fleet finds the primary, and after kill -9 of it, the new one") {
    testredis::RedisServer primary;
    NOTIFY_REQUIRE_REDIS(primary);
    testredis::RedisServer replica(false,
                                   {"--replicaof", "127.0.0.1", std::to_string(primary.port())});
    REQUIRE(eventually(
        [&] { return contains(replica.command("INFO replication"), "master_link_status:up"); }));
    const std::string master = "notify-main";
    const auto sentinel = testredis::RedisServer::sentinel(primary.port(), master);
    // The sentinel learns of the replica from the primary.
    REQUIRE(eventually([&] {
      return contains(sentinel->command("SENTINEL replicas " + master),
                      std::to_string(replica.port()));
    }));
    CHECK(primary_port(*sentinel, master) == primary.port());

    IoThread io;
    SentinelInstance a(io, *sentinel, master);
    SentinelInstance b(io, *sentinel, master);
    REQUIRE(eventually([&] {
      return a.bus->state() == notify::BusState::connected &&
             b.bus->state() == notify::BusState::connected;
    }));
    Client client(io.io, *b.hub, "hana");
    REQUIRE(eventually([&] { return client.of_type("init").size() == 1; }));
    const auto first = a.publish_when_possible("hana", "before the failover");
    REQUIRE(eventually([&] { return client.state().ids.size() == 1; }));
    // The replica has it before the primary goes.
    CHECK(primary.command("WAIT 1 5000") == ":1\r\n");

    primary.kill();
    // Its port stays taken until the sentinel is gone: a redis-server of another test that got
    // it would look to the sentinel like the old primary back, and be made a replica (its data
    // replaced by this test's).
    asio::io_context placeholder_io;
    asio::ip::tcp::acceptor placeholder(placeholder_io);
    placeholder.open(asio::ip::tcp::v4());
    placeholder.set_option(asio::socket_base::reuse_address(true));  // its closed connections
    placeholder.bind({asio::ip::make_address("127.0.0.1"), primary.port()});
    placeholder.listen();
    REQUIRE(eventually([&] { return primary_port(*sentinel, master) == replica.port(); }));
    const auto second = a.publish_when_possible("hana", "after the failover");
    INFO("reported by b:\n" << b.reported());
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
}

#endif  // NOTIFY_TEST_WITH_REDIS
