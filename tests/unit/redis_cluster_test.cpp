// Redis Cluster: a fleet told only of a cluster node that does not serve its slot finds the
// primary that does, keeps every key there and delivers across instances; options without a
// hash tag are refused; the store's calls, and the bus's session ends, wait while the cluster
// is down; the store's calls wait while the slot migrates, and none runs in part; and (TEST_SUITE
// "redis-restart", its own ctest entry, like the other kill -9 cases) after kill -9 of that primary
// the fleet goes on with its replica, which the cluster promotes, missing nothing. The cluster is
// made on loopback for each case: three primaries with a third of the slots each (and a replica).
#include "redis_fixtures.hpp"

#include "../support/redis_cluster.hpp"

#ifdef NOTIFY_TEST_WITH_REDIS

#include <notify/error.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace redistest;

namespace {

using testredis::contains;
using testredis::reply_text;
using Cluster = testredis::RedisCluster;

// Options that say where Redis is only through cluster nodes.
notify::RedisOptions in_cluster(std::vector<std::uint16_t> ports, const std::string& prefix) {
  notify::RedisOptions o;
  o.host = "no-such-host.invalid";  // only the cluster may say where its primary is
  o.port = 1;
  for (const auto port : ports)
    o.cluster_nodes.push_back({"127.0.0.1", port});
  o.prefix = prefix;
  o.password = Cluster::password;
  return o;
}

}  // namespace

TEST_CASE("redis cluster: options need a hash tag in the prefix, db 0 and no sentinels") {
  auto o = in_cluster({7000}, "notify:");
  const auto bus_with = [](const notify::RedisOptions& redis) {
    notify::RedisBusOptions options;
    options.redis = redis;
    notify::RedisBus bus(options);
  };
  CHECK_THROWS_AS(bus_with(o), std::invalid_argument);
  notify::RedisStoreOptions store;
  store.redis = o;
  CHECK_THROWS_AS(notify::RedisStore{store}, std::invalid_argument);
  o.prefix = "{}:";  // an empty tag: the whole key is hashed
  CHECK_THROWS_AS(bus_with(o), std::invalid_argument);
  o.prefix = "{notify}:";
  o.db = 1;
  CHECK_THROWS_AS(bus_with(o), std::invalid_argument);
  o.db = 0;
  o.sentinels = {{"127.0.0.1", 26379}};
  o.sentinel_master = "m";
  CHECK_THROWS_AS(bus_with(o), std::invalid_argument);

  auto url = notify::parse_redis_url("redis-cluster://app:pw@n1:7000,[::1],n3");
  REQUIRE(url.cluster_nodes.size() == 3);
  CHECK(url.cluster_nodes[0].host == "n1");
  CHECK(url.cluster_nodes[0].port == 7000);
  CHECK(url.cluster_nodes[1].host == "::1");
  CHECK(url.cluster_nodes[1].port == 6379);
  CHECK(url.cluster_nodes[2].port == 6379);
  CHECK(url.user == "app");
  CHECK(url.password == "pw");
  CHECK(notify::describe(url) == "cluster n1:7000,[::1]:6379,n3:6379");
  CHECK_THROWS_AS(notify::parse_redis_url("redis-cluster://n1/2"), std::invalid_argument);
  CHECK_THROWS_AS(notify::parse_redis_url("redis-cluster://n1,"), std::invalid_argument);
  // A plain URL parsed over it leaves no cluster behind.
  CHECK(notify::parse_redis_url("redis://h", url).cluster_nodes.empty());
}

TEST_CASE("redis cluster: a fleet finds the primary of its slot through a node that is not it") {
  Cluster cluster("{notify}", false);
  NOTIFY_REQUIRE_REDIS(cluster.node(0));
  const auto asked = (cluster.owner() + 1) % 3;
  const auto redis = in_cluster({cluster.node(asked).port()}, "{notify}:");
  IoThread io;
  FleetInstance a(io, redis);
  FleetInstance b(io, redis);
  INFO("reported by a:\n" << a.reported() << "reported by b:\n" << b.reported());
  REQUIRE(eventually([&] { return all_connected(a, b); }));
  Client ivy_on_a(io.io, *a.hub, "ivy");
  Client ivy_on_b(io.io, *b.hub, "ivy");
  REQUIRE(eventually([&] {
    return ivy_on_a.of_type("init").size() == 1 && ivy_on_b.of_type("init").size() == 1;
  }));
  const auto id = a.publish_when_possible("ivy", "across the cluster");
  for (auto* c : {&ivy_on_a, &ivy_on_b})
    check_holds_exactly(*c, {id});
  // Every key is on the slot's primary; the node asked holds none.
  CHECK(cluster.node(asked).command("DBSIZE") == ":0\r\n");
  CHECK(cluster.node(cluster.owner()).command("DBSIZE") != ":0\r\n");

  // The log of session ends is a key too (its script names it).
  a.end_sessions_when_possible("ivy", "logged_out");
  REQUIRE(eventually([&] { return ivy_on_b.transport->closed(); }));
  CHECK(ivy_on_b.of_type("session:end").size() == 1);
  CHECK(cluster.node(cluster.owner()).command("XLEN {notify}:session-ends") == ":1\r\n");

  // Other tags are served by other primaries: each store finds its own.
  std::set<int> primaries;
  for (const std::string tag : {"a", "b", "c", "user1000", "x"}) {
    CAPTURE(tag);
    notify::RedisStoreOptions options;
    options.redis = in_cluster({cluster.node(asked).port()}, "{" + tag + "}:notify:");
    options.redis.connect_timeout = 5000ms;
    notify::RedisStore store(options);
    const auto n = store.append(draft("u", "in " + tag));
    CHECK(stored_ids(store, "u") == std::vector<std::string>{n.id});
    const auto slot =
        std::atoi(reply_text(cluster.node(0).command("CLUSTER KEYSLOT {" + tag + "}")).c_str());
    primaries.insert(slot <= 5460 ? 0 : slot <= 10922 ? 1 : 2);
  }
  CHECK(primaries.size() >= 2);
}

TEST_CASE("redis cluster: when the slot moves to another primary, calls follow it and none fails") {
  using Settings = FleetInstance::Settings;
  // Sharded, the node also ends the subscriptions to the slot's channels (SSUBSCRIBE); and
  // without the log of session ends (whose replay after a resubscription moves the publishing
  // connection too), the hub's SPUBLISH (no publish_appends) is refused with MOVED.
  const Settings variants[] = {{false, true, true}, {true, true, true}, {true, false, false}};
  for (const auto& settings : variants) {
    CAPTURE(settings.sharded);
    CAPTURE(settings.publish_appends);
    Cluster cluster("{move}", false);
    NOTIFY_REQUIRE_REDIS(cluster.node(0));
    const auto redis = in_cluster(
        {cluster.node(0).port(), cluster.node(1).port(), cluster.node(2).port()}, "{move}:");
    IoThread io;
    FleetInstance a(io, redis, settings);
    FleetInstance b(io, redis, settings);
    INFO("reported by a:\n" << a.reported() << "reported by b:\n" << b.reported());
    const auto both_connected = [&] { return all_connected(a, b); };
    REQUIRE(eventually(both_connected));
    Client kim(io.io, *b.hub, "kim");
    REQUIRE(eventually([&] { return kim.of_type("init").size() == 1; }));
    const auto first = a.hub->publish(draft("kim", "before the move"));
    REQUIRE(eventually([&] { return kim.state().ids.size() == 1; }));

    const auto from = cluster.owner();
    cluster.move_slot((from + 1) % 3);
    CHECK(cluster.node(from).command("DBSIZE") == ":0\r\n");
    if (settings.sharded) {
      // Both subscribers were told, and are back where the slot is (and, with the log, so are
      // the publishing connections: the replay's read was refused with MOVED).
      const auto back = [&](const FleetInstance& x) {
        const auto log = x.reported();
        return log.find("ended the subscription") != std::string::npos &&
               (!settings.session_end_log ||
                log.find("publishing connection: connected again") != std::string::npos);
      };
      REQUIRE(eventually([&] { return back(a) && back(b) && both_connected(); }));
    }
    // The store's connections are on the old primary: each call is refused there (MOVED) and
    // sent again to the new one, so this publish does not fail.
    std::string second;
    REQUIRE_NOTHROW(second = a.hub->publish(draft("kim", "after the move")));
    REQUIRE(eventually([&] { return kim.state().ids.size() == 2; }));
    CHECK(kim.state().ids == std::vector<std::string>{first, second});
    CHECK(kim.state().duplicates == 0);
    Client later(io.io, *b.hub, "kim");  // read through B's store, from the new primary
    REQUIRE(eventually([&] { return later.of_type("init").size() == 1; }));
    CHECK(later.state().ids == std::vector<std::string>{first, second});
    // A session end follows too (with the log, a script: MOVED as well; A's
    // publishing connection may be on its way to the new primary).
    a.end_sessions_when_possible("kim", "logged_out");
    REQUIRE(eventually([&] { return kim.transport->closed() && later.transport->closed(); }));
    if (settings.session_end_log)
      CHECK(eventually([&] {
        return cluster.node(cluster.owner()).command("XLEN {move}:session-ends") == ":1\r\n";
      }));
  }
}

TEST_CASE("redis cluster: store calls wait while the cluster is down, then run once") {
  Cluster cluster("{down}", false);
  NOTIFY_REQUIRE_REDIS(cluster.node(0));
  auto& owner = cluster.node(cluster.owner());
  notify::RedisStoreOptions options;
  options.redis = in_cluster({owner.port()}, "{down}:");
  options.redis.command_timeout = 20s;
  options.seed_from_clock = false;
  notify::RedisStore store(options);
  const auto before = store.append(draft("ada", "before"));

  // The owner says the cluster is down, though it still serves the tag's slot.
  cluster.put_owner_down();
  const auto failed_before = owner.command("INFO commandstats");
  std::atomic<bool> healed{false};
  std::thread heal([&] {
    std::this_thread::sleep_for(300ms);
    healed = cluster.restore_owner();
  });
  std::vector<std::string> ids;
  for (const auto& n : or_failed_check("append_all", [&] {
         return store.append_all({draft("ada", "a1"), draft("ada", "a2")});
       }))
    ids.push_back(n.id);
  heal.join();
  CHECK(healed);
  INFO("commandstats before: " << failed_before
                               << "\nafter: " << owner.command("INFO commandstats"));
  REQUIRE(ids.size() == 2);
  CHECK(stored_ids(store, "ada") == std::vector<std::string>{before.id, ids[0], ids[1]});
  CHECK(std::stoull(ids[0]) < std::stoull(ids[1]));
  CHECK(contains(owner.command("CLUSTER INFO"), "cluster_state:ok"));
}

TEST_CASE(
    "redis cluster: store calls made while the slot migrates wait for it, none runs in part") {
  Cluster cluster("{mig}", false);
  NOTIFY_REQUIRE_REDIS(cluster.node(0));
  notify::RedisStoreOptions options;
  options.redis = in_cluster(
      {cluster.node(0).port(), cluster.node(1).port(), cluster.node(2).port()}, "{mig}:");
  options.redis.command_timeout = 20s;
  options.seed_from_clock = false;  // ids 1, 2, 3...: a script that ran in part leaves a gap
  // Nothing trimmed: a move slowed by a loaded machine saw more than 1,000 appends per user.
  options.max_per_user = 100000;
  notify::RedisStore store(options);
  const auto user = [](std::size_t i) { return "u" + std::to_string(i % 4); };
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < 20; ++i)
    ids.push_back(store.append(draft(user(i), "before")).id);

  // Appends back to back, for as long as the slot moves and a little after.
  std::atomic<bool> moving{true};
  std::atomic<std::size_t> made{0};
  std::vector<std::string> during, failures;
  std::thread publisher([&] {
    std::size_t after = 0;
    for (std::size_t i = 0; i < 100000 && after < 20; ++i) {
      if (!moving)
        ++after;
      try {
        during.push_back(store.append(draft(user(i), "during")).id);
      } catch (const std::exception& e) {
        failures.push_back(e.what());
        if (!moving)
          break;  // each would wait command_timeout: one failure says enough
      }
      ++made;
    }
  });
  // No REQUIRE and no exception until the thread is joined.
  CHECK(eventually([&] { return made >= 5; }));
  const auto from = cluster.owner();
  const auto refused_here = [&] {
    const auto errors = cluster.node(from).command("INFO errorstats");
    return contains(errors, "errorstat_TRYAGAIN") || contains(errors, "errorstat_ASK");
  };
  std::string move_failure;
  bool met = false;
  try {
    // The sequence's key first: every append declares it, so from here each one finds its
    // keys split between the two nodes until the move ends (on a slow machine a move of all
    // keys at once could end between two appends).
    cluster.begin_move((from + 1) % 3);
    cluster.migrate_key("{mig}:seq");
    met = eventually(refused_here, 15s);
    cluster.finish_move();
  } catch (const std::exception& e) {
    move_failure = e.what();
  }
  moving = false;
  publisher.join();
  CAPTURE(move_failure);
  REQUIRE(move_failure.empty());
  CHECK(cluster.node(from).command("DBSIZE") == ":0\r\n");
  // Calls met the migration: refused whole, while some keys had left (TRYAGAIN) or all (ASK).
  CAPTURE(cluster.node(from).command("INFO errorstats"));
  CHECK(met);
  INFO("failures: " << (failures.empty() ? std::string() : failures.front()));
  CHECK(failures.empty());
  ids.insert(ids.end(), during.begin(), during.end());
  // Every call ran once and whole: the ids follow one another, each stored once.
  std::vector<std::string> expected, stored;
  for (std::size_t i = 1; i <= ids.size(); ++i)
    expected.push_back(std::to_string(i));
  CHECK(ids == expected);
  for (std::size_t u = 0; u < 4; ++u)
    for (const auto& id : stored_ids(store, user(u)))
      stored.push_back(id);
  std::sort(stored.begin(), stored.end(), [](const std::string& a, const std::string& b) {
    return std::stoull(a) < std::stoull(b);
  });
  CHECK(stored == expected);
  CHECK(cluster.node(cluster.owner()).command("HLEN {mig}:n") ==
        ":" + std::to_string(expected.size()) + "\r\n");
}

TEST_CASE("redis cluster: a publish mid-migration stores once; the age trim leaves what left") {
  Cluster cluster("{age}", false);
  NOTIFY_REQUIRE_REDIS(cluster.node(0));
  notify::RedisStoreOptions options;
  options.redis = in_cluster(
      {cluster.node(0).port(), cluster.node(1).port(), cluster.node(2).port()}, "{age}:");
  options.max_age = 2s;
  options.max_broadcasts = 1;
  notify::RedisStore store(options);
  // While the slot migrates, the source runs a script only when every key it declares is
  // still there (else TRYAGAIN or ASK): all eleven of "new"'s exist. The second broadcast
  // drops the first (the trim hash), "new" reads it (read, br, lr) and keeps one unread.
  store.append(test::broadcast("b1"));
  const auto b2 = store.append(test::broadcast("b2")).id;
  store.append(draft("new", "first"));
  CHECK(store.mark_read("new", b2).ids == std::vector<std::string>{b2});
  const auto expired = store.append(draft("old", "expired")).id;
  std::this_thread::sleep_for(2100ms);  // all past max_age

  // The slot starts to move, and the old user's keys are the first to go: the next append
  // runs on the source, and its age trim (b2, "first", then "expired") meets keys that left.
  const auto from = cluster.owner();
  cluster.begin_move((from + 1) % 3);
  for (const auto* key : {"{age}:u:old:h", "{age}:u:old:unread"})
    cluster.migrate_key(key);
  const auto id =
      or_failed_check("append", [&] { return store.append(draft("new", "mid-migration")); }).id;
  REQUIRE_FALSE(id.empty());
  CHECK(std::stoull(id) > std::stoull(expired));
  // The expired notification was left whole for a later trim; the two before it are gone.
  CHECK(cluster.node(from).command("HLEN {age}:n") == ":2\r\n");
  CHECK(cluster.node(from).command("ZCARD {age}:ts") == ":2\r\n");

  cluster.finish_move();
  CHECK(stored_ids(store, "new") == std::vector<std::string>{id});
  const auto later = store.append(draft("new", "after")).id;
  CHECK(std::stoull(later) > std::stoull(id));
  // The trim on the new primary dropped it.
  auto& owner = cluster.node(cluster.owner());
  CHECK(owner.command("HEXISTS {age}:n " + expired) == ":0\r\n");
  CHECK(stored_ids(store, "old").empty());
}

TEST_CASE("redis cluster: a session end refused while the cluster is down is sent again") {
  Cluster cluster("{ends}", false);
  NOTIFY_REQUIRE_REDIS(cluster.node(0));
  auto& owner = cluster.node(cluster.owner());
  const auto redis = in_cluster({owner.port()}, "{ends}:");
  IoThread io;
  FleetInstance a(io, redis);
  FleetInstance b(io, redis);
  INFO("reported by a:\n" << a.reported() << "reported by b:\n" << b.reported());
  REQUIRE(eventually([&] { return all_connected(a, b); }));
  Client kim(io.io, *b.hub, "kim");
  REQUIRE(eventually([&] { return kim.of_type("init").size() == 1; }));

  cluster.put_owner_down();
  // The log's script names its key: refused with CLUSTERDOWN, nothing logged or published.
  a.end_sessions_when_possible("kim", "logged_out");
  REQUIRE(eventually([&] { return contains(a.reported(), "CLUSTERDOWN"); }));
  CHECK_FALSE(kim.transport->closed());
  REQUIRE(cluster.restore_owner());
  REQUIRE(eventually([&] { return kim.transport->closed(); }));
  CHECK(kim.of_type("session:end").size() == 1);
  CHECK(owner.command("XLEN {ends}:session-ends") == ":1\r\n");
  CHECK(eventually([&] { return contains(a.reported(), "Redis runs what it refused again"); }));
}

TEST_SUITE("redis-restart") {
  TEST_CASE(
      "redis cluster: after kill -9 of the slot's primary, the fleet goes on with its replica") {
    Cluster cluster("{ha}", true);
    NOTIFY_REQUIRE_REDIS(cluster.node(0));
    auto& primary = cluster.node(cluster.owner());
    auto& replica = cluster.node(3);
    const auto other = (cluster.owner() + 1) % 3;
    // The primary first: once it is gone, a connection asks the next node.
    const auto redis =
        in_cluster({primary.port(), cluster.node(other).port(), replica.port()}, "{ha}:");
    check_fleet_across_failover(redis, primary, [&] {
      primary.kill();
      auto hold = std::make_shared<PortHolder>(primary.port());
      REQUIRE(eventually(
          [&] { return cluster.primary_port(cluster.node(other)) == replica.port(); }, 30s));
      // The new primary may still refuse scripts ("the cluster is down") until it sees the
      // cluster whole again: the store's publish waits for that (command_timeout).
      return hold;
    });
  }
}

#endif  // NOTIFY_TEST_WITH_REDIS
