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
    // With a password, a redis-server of another test that takes the killed primary's port
    // can neither feed the replica (a full resync would replace its data) nor serve the fleet.
    const std::string password = "ha-pw";
    testredis::RedisServer primary(false, {}, "", password);
    NOTIFY_REQUIRE_REDIS(primary);
    testredis::RedisServer replica(
        false, {"--replicaof", "127.0.0.1", std::to_string(primary.port())}, "", password);
    REQUIRE(eventually(
        [&] { return contains(replica.command("INFO replication"), "master_link_status:up"); }));
    const std::string master = "notify-main";
    const auto sentinel = testredis::RedisServer::sentinel(
        primary.port(), master, 500, "sentinel auth-pass " + master + " " + password + "\n");
    // The sentinel learns of the replica from the primary.
    REQUIRE(eventually([&] {
      return contains(sentinel->command("SENTINEL replicas " + master),
                      std::to_string(replica.port()));
    }));
    CHECK(primary_port(*sentinel, master) == primary.port());

    auto redis = via_sentinel(sentinel->port(), master, "ha:");
    redis.password = password;
    check_fleet_across_failover(redis, primary, [&] {
      primary.kill();
      // Its port stays taken until the sentinel is gone.
      auto hold = std::make_shared<PortHolder>(primary.port());
      // (A sentinel whose first attempt times out waits twice failover-timeout before the
      // next: on a loaded machine the failover has taken more than 30 s.)
      REQUIRE(eventually([&] { return primary_port(*sentinel, master) == replica.port(); }, 90s));
      return hold;
    });
  }
}

#endif  // NOTIFY_TEST_WITH_REDIS
