// RedisCluster: a Redis Cluster of three primaries (redis-server children, each on a free
// loopback port, see RedisServer), with a third of the slots each, and optionally a replica
// of the primary that serves a given hash tag's slot; for tests. Its nodes require
// `password` (clients and the replica authenticate), so that a redis-server of another test
// that takes a killed node's port can neither feed the replica nor serve the fleet. The
// constructor waits until
// every node says the cluster is ok (and the replica is in sync) and throws
// std::runtime_error naming the step that failed. Header-only: shared by the unit and
// integration test runners.
#pragma once

#include "redis_server.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace testredis {

inline bool contains(const std::string& reply, const std::string& text) {
  return reply.find(text) != std::string::npos;
}

// The text of a bulk reply ("$N\r\nTEXT\r\n") or an integer reply (":N\r\n").
inline std::string reply_text(const std::string& raw) {
  if (raw.rfind(':', 0) == 0)
    return raw.substr(1, raw.find("\r\n") - 1);
  const auto start = raw.find("\r\n");
  if (raw.rfind('$', 0) != 0 || start == std::string::npos)
    return {};
  return raw.substr(start + 2, std::strtoul(raw.c_str() + 1, nullptr, 10));
}

// The strings of an array of bulk strings ("*N\r\n$L\r\nTEXT\r\n...").
inline std::vector<std::string> bulk_strings(const std::string& raw) {
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

class RedisCluster {
 public:
  // Three primaries, and with `replica` a fourth node, a replica of the one that serves
  // `tag`'s slot ("{notify}"). With a replica the nodes, once formed, give up on a silent node
  // after 500 ms (a quick failover); without one, after 15 s: nothing can fail over then, and on a
  // loaded machine a node late to answer for 500 ms would put the cluster down ("the cluster is
  // down" to every command) for no reason the test is about.
  static constexpr const char* password = "cluster-pw";

  RedisCluster(const std::string& tag, bool replica) {
    // 15 s while the cluster forms, whatever comes after: on a machine loaded by other
    // suites, nodes starved for 500 ms marked each other failing, and the cluster took more
    // than a minute to say ok.
    const std::vector<std::string> args{"--cluster-node-timeout", "15000"};
    for (int i = 0; i < (replica ? 4 : 3); ++i)
      nodes_.push_back(std::make_unique<RedisServer>(false, args, "", password, true));
    if (!available())
      return;
    // A config epoch of its own for each node, as redis-cli --cluster create gives them.
    // Left at 0, the nodes settle their tie in time, and a slot moved before they have may
    // not follow: the new owner takes a new epoch only when its own is not the highest
    // already (shared with another node, say), and a claim with an epoch no higher than the
    // old owner's loses where that owner's still stands. A move then timed out, with a node
    // naming the old owner for good.
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      expect_ok(configure(i, "CLUSTER SET-CONFIG-EPOCH " + std::to_string(i + 1)),
                "CLUSTER SET-CONFIG-EPOCH");
    for (int i = 0; i < 3; ++i)
      expect_ok(configure(i, "CLUSTER ADDSLOTSRANGE " + std::to_string(ranges[i][0]) + " " +
                                 std::to_string(ranges[i][1])),
                "CLUSTER ADDSLOTSRANGE");
    for (std::size_t i = 1; i < nodes_.size(); ++i)
      expect_ok(configure(0, "CLUSTER MEET 127.0.0.1 " + std::to_string(node(i).port()) + " " +
                                 std::to_string(node(i).cluster_port())),
                "CLUSTER MEET");
    const auto known = "cluster_known_nodes:" + std::to_string(nodes_.size());
    wait_for(
        [&] {
          for (const auto& n : nodes_) {
            const auto info = n->command("CLUSTER INFO");
            if (!contains(info, "cluster_state:ok") || !contains(info, known))
              return false;
          }
          return true;
        },
        "every node to say cluster_state:ok");
    ids_.resize(nodes_.size());
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      wait_for([&] { return !(ids_[i] = reply_text(node(i).command("CLUSTER MYID"))).empty(); },
               "CLUSTER MYID");
    slot_ = static_cast<unsigned>(
        std::atoi(reply_text(node(0).command("CLUSTER KEYSLOT " + tag)).c_str()));
    owner_ = slot_ <= ranges[0][1] ? 0 : slot_ <= ranges[1][1] ? 1 : 2;
    if (!replica)
      return;
    wait_for([&] { return configure(3, "CLUSTER REPLICATE " + id(owner_)) == "+OK\r\n"; },
             "CLUSTER REPLICATE");
    wait_for([&] { return contains(node(3).command("INFO replication"), "master_link_status:up"); },
             "the replica to be in sync");
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      expect_ok(configure(i, "CONFIG SET cluster-node-timeout 500"), "CONFIG SET");
  }

  bool available() const { return nodes_.front()->available(); }
  // A command that changes the cluster's configuration (slots, nodes) or moves keys: a node
  // answers it after saving its configuration file, with an fsync, which on a machine busy
  // with other tests' writes has taken more than the usual second.
  std::string configure(std::size_t i, const std::string& line) {
    return node(i).command(line, std::chrono::seconds(30));
  }
  RedisServer& node(std::size_t i) { return *nodes_.at(i); }
  const std::string& id(std::size_t i) const { return ids_.at(i); }  // CLUSTER MYID
  std::size_t owner() const { return owner_; }  // the primary that serves the tag's slot
  unsigned slot() const { return slot_; }

  // Moves the slot, and its keys, from the primary that serves it to primary `to`, as
  // redis-cli --cluster reshard does; `to` serves it from then on.
  void move_slot(std::size_t to) {
    begin_move(to);
    finish_move();
  }

  // move_slot() in steps: begin_move() marks the slot migrating to `to` (and importing there),
  // migrate_key() moves one key, finish_move() the keys left and then the slot.
  void begin_move(std::size_t to) {
    const auto slot = std::to_string(slot_);
    expect_ok(configure(to, "CLUSTER SETSLOT " + slot + " IMPORTING " + id(owner_)), "IMPORTING");
    expect_ok(configure(owner_, "CLUSTER SETSLOT " + slot + " MIGRATING " + id(to)), "MIGRATING");
    moving_to_ = to;
  }
  // Up to three tries: a MIGRATE that timed out (IOERR, or no answer in time on a loaded
  // machine) may have restored the key on the target and kept it here, so a try after the
  // first replaces it there (nothing else writes to the importing node) and takes NOKEY,
  // the key gone from here, as done.
  void migrate_key(const std::string& key) {
    const auto line = "MIGRATE 127.0.0.1 " + std::to_string(node(moving_to_).port()) + " " + key +
                      " 0 5000 REPLACE AUTH " + password;
    std::string reply;
    for (int attempt = 0; attempt < 3; ++attempt) {
      reply = configure(owner_, line);
      if (reply == "+OK\r\n" || (attempt > 0 && reply == "+NOKEY\r\n"))
        return;
      if (!reply.empty() && !contains(reply, "IOERR"))
        break;
    }
    expect_ok(reply, ("MIGRATE " + key).c_str());
  }
  void finish_move() {
    const auto slot = std::to_string(slot_);
    // An answer that is not an array (none in time) must not pass for "no keys left".
    const auto keys_left = [&] {
      const auto reply = configure(owner_, "CLUSTER GETKEYSINSLOT " + slot + " 1000");
      if (reply.rfind('*', 0) != 0)
        expect_ok(reply, "CLUSTER GETKEYSINSLOT");
      return bulk_strings(reply);
    };
    for (auto keys = keys_left(); !keys.empty(); keys = keys_left())
      for (const auto& key : keys)
        migrate_key(key);
    // In the order Redis's resharding takes: the new owner first (it takes a new config
    // epoch, which makes its claim win), then the old one, then the other. Told in another
    // order, a node has kept naming the old owner after the others moved on, and the store
    // was sent back there (MOVED) for twenty seconds.
    const std::size_t third = 3 - owner_ - moving_to_;
    for (const auto i : {moving_to_, owner_, third})
      expect_ok(configure(i, "CLUSTER SETSLOT " + slot + " NODE " + id(moving_to_)), "NODE");
    owner_ = moving_to_;
    try {
      wait_for(
          [&] {
            for (std::size_t i = 0; i < 3; ++i)
              if (primary_port(node(i)) != node(owner_).port())
                return false;
            return true;
          },
          "every primary to name the slot's new owner");
    } catch (const std::runtime_error& e) {
      std::string views = e.what();
      for (std::size_t i = 0; i < 3; ++i)
        views += "\nnode " + std::to_string(i) + " (port " + std::to_string(node(i).port()) +
                 ") says:\n" + reply_text(node(i).command("CLUSTER NODES"));
      throw std::runtime_error(views);
    }
  }

  // Takes another of its slots from the primary that serves the tag's slot: it sees a slot
  // that nobody serves and says the cluster is down (cluster-require-full-coverage) while it
  // still serves the tag's slot, until restore_owner(). Returns once it says so.
  void put_owner_down() {
    const auto first = static_cast<unsigned>(ranges[owner_][0]);
    taken_ = std::to_string(slot_ == first ? first + 1 : first);
    expect_ok(configure(owner_, "CLUSTER DELSLOTS " + taken_), "CLUSTER DELSLOTS");
    wait_for([&] { return contains(node(owner_).command("CLUSTER INFO"), "cluster_state:fail"); },
             "the owner to say cluster_state:fail");
  }
  // Gives back the slot put_owner_down() took; whether the owner took it.
  bool restore_owner() { return configure(owner_, "CLUSTER ADDSLOTS " + taken_) == "+OK\r\n"; }

  // The port of the primary that `asked` says serves the slot (CLUSTER NODES), or 0.
  int primary_port(RedisServer& asked) const {
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
  static void expect_ok(const std::string& reply, const char* what) {
    if (reply != "+OK\r\n")
      throw std::runtime_error(std::string("redis cluster: ") + what + " answered " +
                               (reply.empty() ? std::string("nothing in time") : reply));
  }

  // Up to 60 s, polling every 20 ms: on a machine loaded by other suites the nodes have
  // taken more than 20 s to settle.
  static void wait_for(const std::function<bool()>& done, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(std::string("redis cluster: timed out waiting for ") + what);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  // The three primaries' slots, first and last.
  static constexpr int ranges[3][2] = {{0, 5460}, {5461, 10922}, {10923, 16383}};

  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::string> ids_;
  std::string taken_;  // the slot put_owner_down() took
  unsigned slot_ = 0;
  std::size_t owner_ = 0;
  std::size_t moving_to_ = 0;
};

}  // namespace testredis
