// MemoryStore: the default Store, in process memory. History is capped per user (and for
// broadcasts); a cursor older than the kept history gets a reset. Lost on restart: with
// seed_from_clock (the default) a new process's ids start above every id an earlier one
// issued, so a client that comes back across a restart gets a reset, not a resume into a
// history it never saw.
//
// Thread safety: every member function is safe to call concurrently (one mutex).
#pragma once

#include <notify/store.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace notify {

struct MemoryStoreOptions {
  std::size_t max_per_user = 1000;    // notifications kept per user, oldest dropped first
  std::size_t max_broadcasts = 1000;  // broadcast notifications kept
  // The sequence starts at the current time in microseconds, and a cursor below that start
  // (from an earlier process) is refused. Without it ids are 1, 2, 3... in every process,
  // and once a new process has issued as many, a cursor from the old one would resume: the
  // client would miss what the new process sent it before.
  bool seed_from_clock = true;
  // How long an idempotency key is kept (Store's contract; above 0, at most
  // max_idempotency_window), and how many at most: past that many the oldest is forgotten
  // first, so that keys cannot take all memory. A key takes about 100 bytes beside its text
  // (when longer than 15 bytes): 100,000 keys ≈ 10–20 MB, a day of keyed publishes at about
  // one a second.
  std::chrono::milliseconds idempotency_window = std::chrono::hours(24);
  std::size_t max_idempotency_keys = 100'000;
};

class NOTIFY_EXPORT MemoryStore final : public Store {
 public:
  explicit MemoryStore(MemoryStoreOptions options = {});

  Notification append(Notification draft) override;
  std::uint64_t head() override;
  Snapshot snapshot(std::string_view user, std::size_t limit) override;
  std::optional<Resume> resume(std::string_view user, std::uint64_t cursor, std::size_t limit,
                               std::size_t max_missed) override;
  std::vector<Notification> list(std::string_view user, bool unread_only,
                                 std::size_t limit) override;
  std::uint64_t unread_count(std::string_view user) override;
  ReadResult mark_read(std::string_view user, std::string_view id) override;
  ReadResult mark_all_read(std::string_view user) override;
  bool may_block() const noexcept override { return false; }
  bool keeps_idempotency_keys() const noexcept override { return true; }

 private:
  struct Entry {
    std::uint64_t seq;
    Notification notification;
  };
  struct UserState {
    std::deque<Entry> history;                               // oldest first
    std::uint64_t evicted_upto = 0;                          // highest seq dropped from history
    std::uint64_t unread = 0;                                // unread of the user's own history
    std::map<std::uint64_t, std::string> broadcast_read_at;  // per-user read broadcasts
    std::uint64_t last_read = 0;                             // seq of the latest read change
  };

  UserState& user_state(std::string_view user);
  const UserState* find_user(std::string_view user) const;
  // The user's view (own + broadcast) with seq in (after, upto], oldest first.
  std::vector<Notification> view(const UserState* state, std::uint64_t after,
                                 std::uint64_t upto) const;
  std::uint64_t unread_locked(const UserState* state) const;
  void forget_expired_keys();
  void forget_oldest_key();

  MemoryStoreOptions options_;
  std::mutex mutex_;
  std::uint64_t head_ = 0;
  std::uint64_t base_ = 0;  // where the sequence started: cursors below it are refused
  std::unordered_map<std::string, UserState> users_;
  std::deque<Entry> broadcasts_;  // oldest first
  std::uint64_t broadcasts_evicted_upto_ = 0;
  struct KeptPublish {
    std::uint64_t seq = 0;
    std::chrono::system_clock::time_point created;  // its created_at
    std::uint64_t fingerprint = 0;                  // content_fingerprint() of its draft
  };
  std::unordered_map<std::string, KeptPublish> kept_keys_;
  // The keys of kept_keys_, oldest first, with the time each is forgotten. They point at the
  // map's own copies, which stay where they are when the map rehashes.
  std::deque<std::pair<std::chrono::steady_clock::time_point, const std::string*>> key_expiry_;
};

}  // namespace notify
