// RedisStoreOptions::wait_replicas on a primary with one replica made per case: a write
// returns once the replica has it (a replica stopped with SIGSTOP holds it back), fails when
// the replica does not have it in time, and (TEST_SUITE "redis-restart") survives kill -9 of
// the primary and the replica's promotion.
#include "redis_fixtures.hpp"

#ifdef NOTIFY_TEST_WITH_REDIS

#include <csignal>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <vector>

using namespace redistest;
using notify::RedisStore;
using notify::RedisStoreOptions;

namespace {

// Both servers require it (requirepass and masterauth), so that after a kill of the primary
// the replica cannot sync from a server of another test that takes the primary's port.
const std::string password = "replication-pw";

struct PrimaryAndReplica {
  // No wait for more replicas before a full sync (Redis waits 5 s by default).
  testredis::RedisServer primary{false, {"--repl-diskless-sync-delay", "0"}, {}, password};
  std::unique_ptr<testredis::RedisServer> replica;

  PrimaryAndReplica() {
    if (primary.available())
      replica = std::make_unique<testredis::RedisServer>(
          false,
          std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(primary.port())},
          std::string{}, password);
  }
  bool available() const { return primary.available(); }

  // True once the replica has synced and the primary counts it as online (only then does
  // WAIT ask it for an acknowledgement at once rather than wait for its next periodic one).
  bool linked() const {
    return eventually([&] {
      return replica->command("INFO replication").find("master_link_status:up") !=
                 std::string::npos &&
             primary.command("INFO replication").find("state=online") != std::string::npos;
    });
  }
};

RedisStoreOptions store_options(const testredis::RedisServer& server, std::size_t replicas) {
  RedisStoreOptions o;
  o.redis = options_for(server, "wait:");
  o.redis.password = password;
  o.seed_from_clock = false;
  o.wait_replicas = replicas;
  // Generous: a loaded machine (two test suites at once) has kept a replica from
  // acknowledging within 2 s.
  o.redis.command_timeout = 15000ms;
  o.replica_timeout = 10000ms;
  return o;
}

// SIGSTOP to a server until resume() or destruction: it reads nothing meanwhile, so the
// primary's replication stream waits in its socket.
class Stopped {
 public:
  explicit Stopped(pid_t pid) : pid_(pid) {
    ::kill(pid_, SIGSTOP);
    // kill() returns before the process has stopped; /proc says when it has.
    REQUIRE(eventually([&] { return state() == 'T'; }));
  }
  ~Stopped() { resume(); }
  Stopped(const Stopped&) = delete;
  Stopped& operator=(const Stopped&) = delete;
  void resume() {
    if (pid_ > 0)
      ::kill(pid_, SIGCONT);
    pid_ = -1;
  }

 private:
  char state() const {
    std::ifstream stat("/proc/" + std::to_string(pid_) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');  // "PID (comm) S ..."
    return paren == std::string::npos || paren + 2 >= line.size() ? '?' : line[paren + 2];
  }

  pid_t pid_;
};

// Appends while the replica is stopped: the append must still be unanswered after 500 ms
// (it waits for the replica), and is answered once the replica runs again. Returns its id.
std::string append_held_by_stopped_replica(RedisStore& store,
                                           const testredis::RedisServer& replica) {
  Stopped stopped(replica.pid());
  auto pending = std::async(std::launch::async, [&] { return store.append(draft("u")); });
  CHECK(pending.wait_for(500ms) == std::future_status::timeout);
  stopped.resume();
  return pending.get().id;
}

bool replica_has(const testredis::RedisServer& replica, const std::string& id) {
  return replica.command("HEXISTS wait:n " + id) == ":1\r\n";
}

}  // namespace

TEST_CASE("redis store: options for waiting on replicas are checked") {
  RedisStoreOptions o;
  o.wait_replicas = 1;
  CHECK_NOTHROW(RedisStore{o});  // connects on first use
  o.replica_timeout = 0ms;
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
  o.replica_timeout = o.redis.command_timeout;  // WAIT would outlast the call's deadline
  CHECK_THROWS_AS(RedisStore{o}, std::invalid_argument);
  o.wait_replicas = 0;  // not used: not checked
  CHECK_NOTHROW(RedisStore{o});
}

TEST_CASE("redis store: with wait_replicas a write returns once a replica has it, or fails") {
  PrimaryAndReplica servers;
  NOTIFY_REQUIRE_REDIS(servers);
  REQUIRE(servers.linked());
  const auto& replica = *servers.replica;
  RedisStore store(store_options(servers.primary, 1));

  const auto first = store.append(draft("u"));
  CHECK(replica_has(replica, first.id));

  // While the replica is stopped the write is not answered; it is once the replica runs.
  const auto second_id = append_held_by_stopped_replica(store, replica);
  CHECK(replica_has(replica, second_id));

  // A replica stopped for longer than replica_timeout: each kind of write fails, and says so;
  // reads do not wait.
  auto impatient_options = store_options(servers.primary, 1);
  impatient_options.replica_timeout = 300ms;
  RedisStore impatient(impatient_options);
  {
    Stopped stopped(replica.pid());
    try {
      impatient.append(draft("u"));
      FAIL("the append returned without the replica");
    } catch (const notify::RedisError& e) {
      CHECK(std::string(e.what()).find("reached 0 of the 1 replicas asked for within 300 ms") !=
            std::string::npos);
    }
    CHECK_THROWS_AS(impatient.append_all({draft("v"), draft("w")}), notify::RedisError);
    CHECK_THROWS_AS(impatient.mark_read("u", first.id), notify::RedisError);
    CHECK_THROWS_AS(impatient.mark_all_read("u"), notify::RedisError);
    CHECK(impatient.unread_count("u") == 0);
    CHECK(impatient.list("v", false, 10).size() == 1);
  }
  // The primary ran those writes all the same: an error means "not known to be on enough
  // replicas", not "not stored".
  CHECK(store.list("u", false, 10).size() == 3);
  CHECK(store.list("w", false, 10).size() == 1);
}

TEST_SUITE("redis-restart") {
  TEST_CASE(
      "redis store: a write answered with wait_replicas survives kill -9 of the primary and "
      "the replica's promotion") {
    PrimaryAndReplica servers;
    NOTIFY_REQUIRE_REDIS(servers);
    REQUIRE(servers.linked());
    auto& replica = *servers.replica;
    RedisStore store(store_options(servers.primary, 1));
    const auto first = store.append(draft("u"));

    const auto second_id = append_held_by_stopped_replica(store, replica);
    servers.primary.kill();
    REQUIRE(replica.command("REPLICAOF NO ONE") == "+OK\r\n");

    RedisStore promoted(store_options(replica, 0));
    CHECK(joined(stored_ids(promoted, "u")) == joined({first.id, second_id}));
    CHECK(promoted.append(draft("u")).id == "3");
  }

  TEST_CASE(
      "redis store: after a failover that lost the last write, its id goes to no other "
      "notification") {
    PrimaryAndReplica servers;
    NOTIFY_REQUIRE_REDIS(servers);
    REQUIRE(servers.linked());
    auto& replica = *servers.replica;
    auto options = store_options(servers.primary, 0);
    options.seed_from_clock = true;
    RedisStore store(options);
    const auto kept = store.append(draft("u", "kept"));
    REQUIRE(eventually([&] { return replica_has(replica, kept.id); }));
    std::string lost_id;
    {
      // The primary drops its link to the stopped replica, which cannot link again before the
      // primary dies: the write after that is on the primary alone.
      Stopped stopped(replica.pid());
      REQUIRE(servers.primary.command("CLIENT KILL TYPE replica") == ":1\r\n");
      lost_id = store.append(draft("u", "lost")).id;
      servers.primary.kill();
    }
    REQUIRE(replica.command("REPLICAOF NO ONE") == "+OK\r\n");

    options.redis = store_options(replica, 0).redis;
    RedisStore promoted(options);
    CHECK(joined(stored_ids(promoted, "u")) == joined({kept.id}));
    const auto next = promoted.append(draft("u", "after"));
    CHECK(std::stoull(next.id) > std::stoull(lost_id));
    // A client that was sent the lost notification resumes from its id: it gets the next one
    // (a live connection, which drops ids it has already passed, would deliver it too).
    const auto resumed = promoted.resume("u", std::stoull(lost_id), 10, 100);
    REQUIRE(resumed);
    REQUIRE(resumed->missed.size() == 1);
    CHECK(resumed->missed.front().id == next.id);
  }
}

#endif
