// Store: the notifications that must outlive a connection.
//
// The contract every store keeps:
//  - append() assigns each notification an id that is the decimal form of a strictly
//    increasing 64-bit sequence (shared by all users), and createdAt.
//  - mark_read()/mark_all_read() also take a number from that sequence, so a read-state
//    change is ordered against notifications (`ReadResult::seq`).
//  - head() is the last number taken. A cursor is any number <= head(); the hub compares
//    cursors with sequence numbers to deliver every event exactly once.
//  - A number is never given to a second notification, across restarts and lost writes too:
//    clients hold ids as cursors, and one that was sent the first would pass over the second.
//    The stores here keep the sequence at or above sequence_floor_now() (their option
//    seed_from_clock; MemoryStore starts there and refuses older cursors).
//  - A broadcast is stored once and seen by every user, with a read state per user.
//  - A store that keeps idempotency keys (keeps_idempotency_keys()) remembers, for its
//    idempotency window, the id given to each draft with a Notification::idempotency_key,
//    per recipient (the user, or the broadcasts). An append of a draft whose key it holds
//    for that recipient stores nothing, takes no number, and returns the draft with the
//    first one's id and created_at and `replayed` set, and `replay_differs` too when its
//    content_fingerprint() is not the first one's; atomically, so that of two appends
//    racing with one key exactly one stores.
//
// Thread safety: every member function is safe to call concurrently.
#pragma once

#include <notify/export.hpp>
#include <notify/notification.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace notify {

struct Snapshot {
  std::vector<Notification> unread;  // newest first, at most the requested limit
  std::uint64_t unread_count = 0;    // all unread, not only the listed ones
  std::uint64_t cursor = 0;          // the sequence position this snapshot is taken at
};

struct Resume {
  Snapshot snapshot;                 // the user's state at the cursor (cursor == the one asked)
  std::vector<Notification> missed;  // every notification after the cursor, oldest first
  std::uint64_t head = 0;            // the position after `missed`
  // The position of the user's latest read-state change (ReadResult::seq of the last
  // mark_read/mark_all_read that changed something); 0 when there was none. A store that does
  // not keep it leaves 0: a read that a connection missed then goes unrepaired until the next
  // notification or outage brings the count.
  std::uint64_t last_read = 0;
};

// One connection's place in the sequence, for Store::resume_many().
struct ResumeQuery {
  std::string user;
  std::uint64_t cursor = 0;
};

struct ReadResult {
  std::vector<std::string> ids;  // the notifications whose state changed
  std::uint64_t unread_count = 0;
  std::uint64_t seq = 0;  // the sequence position of this change
};

// One read-state change, for Store::mark_many(): the notification `id` when set
// (mark_read()), else all of the user's (mark_all_read()).
struct MarkQuery {
  std::string user;
  std::optional<std::string> id;
};

class NOTIFY_EXPORT Store {
 public:
  virtual ~Store();

  // Stores a validated draft (user_id set, or broadcast) and returns it with id and
  // created_at assigned (or, for a key already held, the first publish's: see above).
  virtual Notification append(Notification draft) = 0;

  // append() for each draft, in order: returns them stored, in the same order, with
  // increasing ids as a rule. A store that sent a refused draft again after later ones ran
  // would give it a later id than theirs (RedisStore runs a batch as one transaction, so it
  // does not); the hub hands a batch to the bus in id order, whatever the drafts' order. The
  // default calls append() once per draft; SqliteStore writes them all in one transaction (one
  // commit for a publish to many users), RedisStore pipelines them (one round trip). A draft that
  // repeats an earlier one's key and recipient is a replay of it. When one fails the call throws:
  // SqliteStore then stores none, other stores may have stored some of them.
  virtual std::vector<Notification> append_all(std::vector<Notification> drafts);

  virtual std::uint64_t head() = 0;

  // The user's unread notifications now.
  virtual Snapshot snapshot(std::string_view user, std::size_t limit) = 0;

  // snapshot() for each of `users`, answered in the same order. The default asks snapshot()
  // once per user; RedisStore pipelines them. The hub reads new connections that resume
  // from no cursor (or one refused), repaired ones it resets and slow ones it resyncs with it,
  // a batch at a time.
  // Throws as snapshot() does, and then no answer is known.
  virtual std::vector<Snapshot> snapshot_many(const std::vector<std::string>& users,
                                              std::size_t limit);

  // The user's state as of `cursor` plus what came after it. nullopt when the cursor is
  // unknown (ahead of head()) or older than the history kept for this user, so the caller
  // must reset the client instead. Returns nullopt as well when more than `max_missed`
  // notifications came after the cursor. `limit` bounds the snapshot's list; 0 asks for the
  // count alone (the hub's gap repair does).
  virtual std::optional<Resume> resume(std::string_view user, std::uint64_t cursor,
                                       std::size_t limit, std::size_t max_missed) = 0;

  // resume() for each query, answered in the same order, with one `limit` and `max_missed`
  // for all. The default asks resume() once per query; a store that can answer many in one
  // round trip overrides it (RedisStore pipelines them). The hub reads connections with a
  // cursor with it, a batch at a time (attach, first primes after a subscription, gap
  // repairs). Throws as resume() does, and then no answer is known.
  virtual std::vector<std::optional<Resume>> resume_many(const std::vector<ResumeQuery>& queries,
                                                         std::size_t limit, std::size_t max_missed);

  // The user's notifications, newest first.
  virtual std::vector<Notification> list(std::string_view user, bool unread_only,
                                         std::size_t limit) = 0;

  virtual std::uint64_t unread_count(std::string_view user) = 0;

  // Marks one notification read for the user. Unknown ids, ids of other users and ids
  // already read change nothing (empty `ids`).
  virtual ReadResult mark_read(std::string_view user, std::string_view id) = 0;
  virtual ReadResult mark_all_read(std::string_view user) = 0;

  // mark_read() or mark_all_read() for each query, in order, answered in the same order.
  // The default makes them one call at a time; SqliteStore makes them in one transaction
  // (one commit), RedisStore sends them as one transaction (one round trip). The hub's
  // store thread makes the changes queued together with it. Throws as they do, and then no
  // answer is known: SqliteStore and RedisStore have made none of the changes, the default
  // those before the one that failed.
  virtual std::vector<ReadResult> mark_many(const std::vector<MarkQuery>& marks);

  // True when the store itself publishes on the bus, atomically with taking the sequence
  // number, each notification append() stores and each `notification:read` event of a
  // mark_read()/mark_all_read() that changed something (RedisStore with publish_appends),
  // so that every instance receives them in sequence order. The hub then does not publish
  // those on the bus; send_to() still goes through the bus.
  virtual bool publishes_appends() const noexcept { return false; }

  // True when a call can wait on I/O: a disk, a network round trip. NotificationHub's
  // async calls write and read a store that cannot (MemoryStore) on the calling thread, and
  // queue the others for its store thread, where the hub's own reads (a new connection's
  // snapshot, gap repairs, resyncs) are made too.
  virtual bool may_block() const noexcept { return true; }
  // True when append() keeps the contract's idempotency keys (every store of notify does).
  // The hub refuses a draft with a key when its store does not: the publisher counts on it.
  virtual bool keeps_idempotency_keys() const noexcept { return false; }
};

// The longest idempotency window a store accepts (a key must be forgotten some day; and the
// stores add the window to their clocks).
inline constexpr std::chrono::hours max_idempotency_window{24 * 366};

// Throws std::invalid_argument, naming `store`, unless 0 < window <= max_idempotency_window:
// the check every store makes of its idempotency_window option.
NOTIFY_EXPORT void check_idempotency_window(std::chrono::milliseconds window,
                                            std::string_view store);

// A 64-bit hash of what a draft says (type, title, body, actor, entity, urls, data; not the
// recipient, ids or times), the same in every process and build: stores keep it with an
// idempotency key to tell a true repeat from a key used for another notification. Null and
// empty `data` count as one.
NOTIFY_EXPORT std::uint64_t content_fingerprint(const Notification& draft);

// The current time in microseconds since the epoch: the lowest number a clock-seeded sequence
// may take now. It exceeds every number taken before, given fewer than one a microsecond on
// average and a clock that does not step back by more than a restart or failover takes.
NOTIFY_EXPORT std::uint64_t sequence_floor_now() noexcept;

// Parses a store id or cursor ("42"); nullopt when it is not a plain decimal number.
NOTIFY_EXPORT std::optional<std::uint64_t> parse_sequence(std::string_view text) noexcept;

}  // namespace notify
