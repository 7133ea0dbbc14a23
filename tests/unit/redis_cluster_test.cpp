// Redis Cluster: a fleet told only of a cluster node that does not serve its slot finds the
// primary that does, keeps every key there and delivers across instances; options without a
// hash tag are refused; and (TEST_SUITE "redis-restart", its own ctest entry, like the other
// kill -9 cases) after kill -9 of that primary the fleet goes on with its replica, which the
// cluster promotes, missing nothing. The cluster is made on loopback for each case: three
// primaries with a third of the slots each (and a replica).
#include "redis_fixtures.hpp"

#ifdef NOTIFY_TEST_WITH_REDIS

#include <notify/error.hpp>

#include <cstdlib>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace redistest;

namespace {

bool contains(const std::string& reply, const std::string& text) {
  return reply.find(text) != std::string::npos;
}

// The text of a bulk reply ("$N\r\nTEXT\r\n") or an integer reply (":N\r\n").
std::string reply_text(const std::string& raw) {
  if (raw.rfind(':', 0) == 0)
    return raw.substr(1, raw.find("\r\n") - 1);
  const auto start = raw.find("\r\n");
  if (raw.rfind('$', 0) != 0 || start == std::string::npos)
    return {};
  return raw.substr(start + 2, std::strtoul(raw.c_str() + 1, nullptr, 10));
}

// The strings of an array of bulk strings ("*N\r\n$L\r\nTEXT\r\n...").
std::vector<std::string> bulk_strings(const std::string& raw) {
  std::vector<std::string> out;
  std::size_t at = raw.find("\r\n");
  while (at != std::string::npos && at + 2 < raw.size() && raw[at + 2] == '$') {
    const auto length = std::strtoul(raw.c_str() + at + 3, nullptr, 10);
    const auto start = raw.find("\r\n", at + 2) + 2;
    out.push_back(raw.substr(start, length));
    at = start + length;
  }
  return out;
}

class Cluster {
 public:
  // Three primaries, and with `replica` a replica of the one that serves `tag`'s slot.
  Cluster(const std::string& tag, bool replica) {
    const std::vector<std::string> args{"--cluster-enabled", "yes", "--cluster-node-timeout",
                                        "500"};
    for (int i = 0; i < (replica ? 4 : 3); ++i)
      nodes_.push_back(std::make_unique<testredis::RedisServer>(false, args));
    if (!available())
      return;
    const int ranges[3][2] = {{0, 5460}, {5461, 10922}, {10923, 16383}};
    for (int i = 0; i < 3; ++i)
      REQUIRE(node(i).command("CLUSTER ADDSLOTSRANGE " + std::to_string(ranges[i][0]) + " " +
                              std::to_string(ranges[i][1])) == "+OK\r\n");
    for (std::size_t i = 1; i < nodes_.size(); ++i)
      REQUIRE(node(0).command("CLUSTER MEET 127.0.0.1 " + std::to_string(node(i).port())) ==
              "+OK\r\n");
    const auto known = "cluster_known_nodes:" + std::to_string(nodes_.size());
    REQUIRE(eventually(
        [&] {
          for (const auto& n : nodes_) {
            const auto info = n->command("CLUSTER INFO");
            if (!contains(info, "cluster_state:ok") || !contains(info, known))
              return false;
          }
          return true;
        },
        20s));
    slot_ = static_cast<unsigned>(
        std::atoi(reply_text(node(0).command("CLUSTER KEYSLOT " + tag)).c_str()));
    owner_ = slot_ <= 5460 ? 0 : slot_ <= 10922 ? 1 : 2;
    if (!replica)
      return;
    const auto id = reply_text(node(owner_).command("CLUSTER MYID"));
    REQUIRE(eventually([&] { return node(3).command("CLUSTER REPLICATE " + id) == "+OK\r\n"; }));
    REQUIRE(eventually(
        [&] { return contains(node(3).command("INFO replication"), "master_link_status:up"); },
        20s));
  }

  // Moves the slot, and its keys, from the primary that serves it to primary `to`, as
  // redis-cli --cluster reshard does; `to` serves it from then on.
  void move_slot(std::size_t to) {
    auto& from = node(owner_);
    const auto slot = std::to_string(slot_);
    const auto from_id = reply_text(from.command("CLUSTER MYID"));
    const auto to_id = reply_text(node(to).command("CLUSTER MYID"));
    REQUIRE(node(to).command("CLUSTER SETSLOT " + slot + " IMPORTING " + from_id) == "+OK\r\n");
    REQUIRE(from.command("CLUSTER SETSLOT " + slot + " MIGRATING " + to_id) == "+OK\r\n");
    for (auto keys = bulk_strings(from.command("CLUSTER GETKEYSINSLOT " + slot + " 1000"));
         !keys.empty();
         keys = bulk_strings(from.command("CLUSTER GETKEYSINSLOT " + slot + " 1000")))
      for (const auto& key : keys)
        REQUIRE(from.command("MIGRATE 127.0.0.1 " + std::to_string(node(to).port()) + " " + key +
                             " 0 5000") == "+OK\r\n");
    for (std::size_t i = 0; i < 3; ++i)
      REQUIRE(node(i).command("CLUSTER SETSLOT " + slot + " NODE " + to_id) == "+OK\r\n");
    owner_ = to;
  }

  bool available() const { return nodes_.front()->available(); }
  testredis::RedisServer& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t owner() const { return owner_; }  // the primary that serves the tag's slot
  unsigned slot() const { return slot_; }

  // The port of the primary that `asked` says serves the slot (CLUSTER NODES), or 0.
  int primary_port(testredis::RedisServer& asked) const {
    std::istringstream lines(reply_text(asked.command("CLUSTER NODES")));
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::vector<std::string> f;
      for (std::string x; fields >> x;)
        f.push_back(x);
      if (f.size() < 9 || !contains(f[2], "master") || contains(f[2], "fail"))
        continue;
      for (std::size_t i = 8; i < f.size(); ++i) {
        const auto first = std::strtoul(f[i].c_str(), nullptr, 10);
        const auto dash = f[i].find('-');
        const auto last =
            dash == std::string::npos ? first : std::strtoul(f[i].c_str() + dash + 1, nullptr, 10);
        if (f[i][0] != '[' && first <= slot_ && slot_ <= last)
          return std::atoi(f[1].c_str() + f[1].find(':') + 1);
      }
    }
    return 0;
  }

 private:
  std::vector<std::unique_ptr<testredis::RedisServer>> nodes_;
  unsigned slot_ = 0;
  std::size_t owner_ = 0;
};

// Options that say where Redis is only through cluster nodes.
notify::RedisOptions in_cluster(std::vector<std::uint16_t> ports, const std::string& prefix) {
  notify::RedisOptions o;
  o.host = "no-such-host.invalid";  // only the cluster may say where its primary is
  o.port = 1;
  for (const auto port : ports)
    o.cluster_nodes.push_back({"127.0.0.1", port});
  o.prefix = prefix;
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
  REQUIRE(eventually([&] {
    return a.bus->state() == notify::BusState::connected &&
           b.bus->state() == notify::BusState::connected;
  }));
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
  a.hub->end_sessions("ivy", "logged_out");
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
    const auto both_connected = [&] {
      return a.bus->state() == notify::BusState::connected &&
             b.bus->state() == notify::BusState::connected;
    };
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
    // The store's connections are on the old primary: each call is refused there (a script's
    // first key) and sent again to the new one, so this publish does not fail.
    std::string second;
    REQUIRE_NOTHROW(second = a.hub->publish(draft("kim", "after the move")));
    REQUIRE(eventually([&] { return kim.state().ids.size() == 2; }));
    CHECK(kim.state().ids == std::vector<std::string>{first, second});
    CHECK(kim.state().duplicates == 0);
    Client later(io.io, *b.hub, "kim");  // read through B's store, from the new primary
    REQUIRE(eventually([&] { return later.of_type("init").size() == 1; }));
    CHECK(later.state().ids == std::vector<std::string>{first, second});
    // A session end follows too (with the log, a script that names its key: MOVED). (A's
    // publishing connection may be on its way to the new primary: end_sessions() fails then.)
    REQUIRE(eventually([&] {
      try {
        a.hub->end_sessions("kim", "logged_out");
        return true;
      } catch (const std::system_error& e) {
        CHECK(e.code() == notify::errc::bus_unavailable);
        return false;
      }
    }));
    REQUIRE(eventually([&] { return kim.transport->closed() && later.transport->closed(); }));
    if (settings.session_end_log)
      CHECK(eventually([&] {
        return cluster.node(cluster.owner()).command("XLEN {move}:session-ends") == ":1\r\n";
      }));
  }
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
      return hold;
    });
  }
}

#endif  // NOTIFY_TEST_WITH_REDIS
