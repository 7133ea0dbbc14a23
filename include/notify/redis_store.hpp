// RedisStore: the Store of a fleet, shared by every instance through one Redis (standalone,
// a primary with replicas, or a Redis Cluster with every key in the slot of the prefix's
// hash tag: its scripts touch keys of several users; see RedisOptions::cluster_nodes).
//
// It keeps MemoryStore's behaviour exactly (the same contract tests run on both), and adds
// what a fleet needs:
//  - ids come from one sequence (INCR P seq) for every instance;
//  - every operation is one Lua script (EVALSHA, falling back to EVAL), so concurrent
//    instances never see or leave a half-done change: unread counts stay exact, and
//    snapshot()/resume() read the head and the lists at one point;
//  - with `publish_appends`, append() also publishes the notification on the RedisBus
//    channel of its user (or the broadcast channel) inside the same script, and
//    mark_read()/mark_all_read() publish their `notification:read` event (ids, unreadCount)
//    the same way. Redis runs scripts one at a time, so every subscriber receives these in
//    sequence order, whichever instance made them (two instances each appending then
//    publishing could otherwise publish ids 11 and 10 in that order, and a read event
//    published late would carry an unread count older than a notification already shown).
//    publishes_appends() then returns true and the hub publishes neither on the bus itself;
//  - `seed_from_clock`: a sequence that does not exist yet (a new deployment, or a Redis that
//    came back empty) starts at the current time in microseconds, above every id issued
//    before, and cursors from before that start are refused (the client gets
//    notifications:reset instead of a resume that would mix two histories). Nor does an id
//    fall below the caller's clock afterwards, so a Redis that lost its last writes (a
//    failover to a replica that had not received them) never issues their ids again: a
//    client that saw a lost notification resumes from its id and gets what came after.
//
// Keys (P = RedisOptions::prefix, E = redis_escape(user)); each script declares those it
// touches (KEYS), so that a cluster refuses it whole in a slot being migrated:
//   P seq, P base           the sequence, and where a clock-seeded sequence started
//   P n                     hash: id → the notification's JSON
//   P ts                    sorted set by creation time (ms): "id|E" ("id|" for broadcasts)
//   P b                     sorted set by seq: the broadcasts kept
//   P trim                  hash: E (or "*" for broadcasts) → the highest seq dropped
//   P u:E:h, P u:E:unread   sorted sets by seq: the user's history, and its unread part
//   P u:E:read              hash: id → readAt, for the user's notifications and broadcasts
//   P u:E:br                sorted set by seq: the broadcasts the user has read
//   P u:E:lr                the seq of the user's latest read change (Resume::last_read)
//   P k:E|K                 "<id> <createdAt ms> <content fingerprint>" of the publish given
//                           idempotency key K (E "" for broadcasts), expiring after
//                           idempotency_window
// History is capped per user (max_per_user) and for broadcasts (max_broadcasts), oldest
// dropped first, and by age (max_age: up to 100 expired entries are dropped per append; in
// a cluster migrating the slot, an entry of another user whose keys have left already is
// left for a later append, the publish unharmed).
//
// With wait_replicas, a write returns once that many replicas have it (WAIT), or throws.
//
// Threading: a pool of blocking connections (pool_size); each call takes one, runs its
// script within RedisOptions::command_timeout and gives it back. Failures throw
// std::system_error (I/O: the connection is dropped and reopened on a later call, with
// backoff) or RedisError (an error reply). A call that timed out may or may not have been
// applied. A call that Redis refused without running it, for a while only (LOADING after a
// restart; the cluster down for a moment after a failover; READONLY or MOVED again on a new
// connection, before the sentinels or the cluster have settled; BUSY, TRYAGAIN, NOREPLICAS),
// is sent again after a short pause until command_timeout has passed since the call began,
// and only the refused calls of a pipeline are: a write that ran is never sent twice. The
// appends of one append_all() go as one transaction (MULTI ... EXEC), which Redis runs whole
// or refuses whole, so a state that changes within the pipeline cannot refuse one draft and
// run the next: the drafts keep their order. Every member function is safe to call
// concurrently.
#pragma once

#include <notify/redis_export.hpp>
#include <notify/redis_options.hpp>
#include <notify/store.hpp>

#include <chrono>
#include <cstddef>
#include <memory>

namespace notify {

struct RedisStoreOptions {
  RedisOptions redis;
  std::size_t max_per_user = 1000;               // notifications kept per user
  std::size_t max_broadcasts = 1000;             // broadcasts kept
  std::chrono::seconds max_age{30 * 24 * 3600};  // 0: no age limit
  std::size_t pool_size = 4;                     // connections
  bool seed_from_clock = true;
  // Publish appended notifications and read events on the bus channels (same prefix as the
  // RedisBus, which must use this Redis and the same `sharded` setting).
  bool publish_appends = false;
  bool sharded = false;  // SPUBLISH instead of PUBLISH
  // Durability across a failover. Redis replicates asynchronously: what the primary
  // acknowledged but had not yet sent to a replica is lost when that replica is promoted.
  // With wait_replicas > 0 every write (append, append_all, mark_read, mark_all_read,
  // mark_many) is followed on its connection by WAIT wait_replicas replica_timeout, and the
  // call throws RedisError unless that many replicas had it within replica_timeout. Such an
  // error means "not known to be on enough replicas", not "not stored": the primary ran the
  // write (and, with publish_appends, published it), so a retry may store a second copy.
  std::size_t wait_replicas = 0;
  std::chrono::milliseconds replica_timeout{1000};  // above 0, below redis.command_timeout
  // How long an idempotency key is kept (Store's contract); above 0, at most
  // max_idempotency_window.
  std::chrono::milliseconds idempotency_window = std::chrono::hours(24);
};

class NOTIFY_REDIS_EXPORT RedisStore final : public Store {
 public:
  // Throws std::invalid_argument for invalid options. Connects lazily (first call).
  explicit RedisStore(RedisStoreOptions options = {});
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  Notification append(Notification draft) override;
  // Pipelined, as one transaction when there are two or more: one round trip for all of
  // them, run whole or refused whole.
  std::vector<Notification> append_all(std::vector<Notification> drafts) override;
  std::uint64_t head() override;
  Snapshot snapshot(std::string_view user, std::size_t limit) override;
  // The users' scripts pipelined on one connection: one round trip for the batch.
  std::vector<Snapshot> snapshot_many(const std::vector<std::string>& users,
                                      std::size_t limit) override;
  std::optional<Resume> resume(std::string_view user, std::uint64_t cursor, std::size_t limit,
                               std::size_t max_missed) override;
  // The queries' scripts pipelined on one connection: one round trip for the batch.
  std::vector<std::optional<Resume>> resume_many(const std::vector<ResumeQuery>& queries,
                                                 std::size_t limit,
                                                 std::size_t max_missed) override;
  std::vector<Notification> list(std::string_view user, bool unread_only,
                                 std::size_t limit) override;
  std::uint64_t unread_count(std::string_view user) override;
  ReadResult mark_read(std::string_view user, std::string_view id) override;
  ReadResult mark_all_read(std::string_view user) override;
  // One round trip; two or more as one transaction (MULTI ... EXEC): all made, or none.
  std::vector<ReadResult> mark_many(const std::vector<MarkQuery>& marks) override;
  bool publishes_appends() const noexcept override;
  bool keeps_idempotency_keys() const noexcept override { return true; }

  const RedisStoreOptions& options() const noexcept;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace notify
