// RedisOptions: where a Redis server is and how to talk to it, shared by RedisBus and
// RedisStore (the `notify::redis` component).
//
// Thread safety: plain values and pure functions.
#pragma once

#include <notify/redis_export.hpp>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace notify {

struct RedisEndpoint {
  std::string host;
  std::uint16_t port = 26379;
};

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  unsigned db = 0;       // SELECT db (keys only: Pub/Sub channels ignore the db)
  std::string user;      // ACL user: AUTH user password (Redis >= 6)
  std::string password;  // empty: no AUTH
  // Prepended to every key and channel. Two deployments on one Redis need distinct
  // prefixes (a different db is not enough for the bus: channels are server-wide).
  std::string prefix = "notify:";
  std::chrono::milliseconds connect_timeout{2000};  // resolve + connect + handshake
  std::chrono::milliseconds command_timeout{3000};  // one command (or pipeline) round trip
  // Reconnection: exponential backoff from backoff_initial doubling up to backoff_max,
  // each wait drawn at random in [delay/2, delay] (jitter, so a fleet does not reconnect
  // in lockstep).
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  // Redis Sentinel. When `sentinels` is not empty, host and port are not used: every
  // connection asks the sentinels, in order, for the address of the primary named
  // `sentinel_master` (SENTINEL get-master-addr-by-name), connects there and checks with ROLE
  // that it is the primary, all within connect_timeout. After a failover the next
  // connection finds the new primary (Sentinel closes the clients of a demoted one; a call
  // refused with READONLY is sent again on a new connection). user and password are the
  // primary's.
  std::vector<RedisEndpoint> sentinels;
  std::string sentinel_master;
  std::string sentinel_password;  // AUTH for the sentinels (their requirepass); empty: none
  // Redis Cluster. When `cluster_nodes` is not empty (some of the cluster's nodes, each with
  // its port), host and port are not used: every connection asks the nodes, in order, which
  // primary serves the slot of the prefix's hash tag (CLUSTER SLOTS), connects there and
  // checks with ROLE that it is a primary, all within connect_timeout. The prefix must hold
  // a hash tag, as in "{notify}:", so that every key and channel of the deployment is in one
  // slot: the scripts touch several keys at once, which a cluster allows only within a slot.
  // A call refused with MOVED (the slot moved) or READONLY (a failover demoted the node) did
  // not run: it is sent again on a connection to the primary now; one refused because the
  // cluster is down (as for a moment after a failover) is sent again after a pause, within
  // command_timeout (RedisStore). db must be 0. user and password are the nodes'.
  std::vector<RedisEndpoint> cluster_nodes;
};

// An error reply from Redis (a failed script, a refused AUTH, OOM...), or a reply of an
// unexpected shape. Connection failures are std::system_error instead.
class NOTIFY_REDIS_EXPORT RedisError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses "redis://[[user]:password@]host[:port][/db]" into `base` (other fields kept),
// "redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db]" (sentinels,
// port 26379 by default; the credentials are the primary's), or
// "redis-cluster://[[user]:password@]host[:port][,host[:port]...]" (cluster nodes, port 6379
// by default). A host may be an [IPv6] literal. Throws std::invalid_argument naming the
// problem.
NOTIFY_REDIS_EXPORT RedisOptions parse_redis_url(std::string_view url, RedisOptions base = {});

// "host:port/db" (no credentials), for logs; with sentinels "MASTER via host:port,.../db";
// in a cluster "cluster host:port,...".
NOTIFY_REDIS_EXPORT std::string describe(const RedisOptions& options);

// How a user id appears in key and channel names: every byte outside [A-Za-z0-9_.-] is
// percent-encoded (%XX, upper case), so that no user id can reach another user's keys or
// channels, or contain a glob character.
NOTIFY_REDIS_EXPORT std::string redis_escape(std::string_view user);

}  // namespace notify
