#include <notify/memory_store.hpp>

#include <algorithm>
#include <chrono>
#include <string>

namespace notify {

namespace {
std::string now_timestamp() {
  return format_timestamp(std::chrono::system_clock::now());
}
}  // namespace

MemoryStore::MemoryStore(MemoryStoreOptions options) : options_(options) {
  if (options_.max_per_user == 0 || options_.max_broadcasts == 0)
    throw std::invalid_argument("MemoryStore: history sizes must be at least 1");
  check_idempotency_window(options_.idempotency_window, "MemoryStore");
  if (options_.max_idempotency_keys == 0)
    throw std::invalid_argument("MemoryStore: max_idempotency_keys must be above 0");
  if (options_.seed_from_clock)
    head_ = base_ = sequence_floor_now();
}

MemoryStore::UserState& MemoryStore::user_state(std::string_view user) {
  auto it = users_.find(std::string(user));
  if (it == users_.end())
    it = users_.emplace(std::string(user), UserState{}).first;
  return it->second;
}

const MemoryStore::UserState* MemoryStore::find_user(std::string_view user) const {
  auto it = users_.find(std::string(user));
  return it == users_.end() ? nullptr : &it->second;
}

namespace {

// Walks a user's view (own history and broadcasts, merged by seq) from the newest entry
// at or below `upto` backwards, while `visit(notification, seq)` returns true.
template <typename Entries, typename Visit>
void walk_backward(const Entries* own, const Entries& broadcasts, std::uint64_t upto,
                   Visit&& visit) {
  auto i = own ? own->rbegin() : broadcasts.rend();
  auto i_end = own ? own->rend() : broadcasts.rend();
  auto j = broadcasts.rbegin();
  const auto j_end = broadcasts.rend();
  if (own) {
    while (i != i_end && i->seq > upto)
      ++i;
  }
  while (j != j_end && j->seq > upto)
    ++j;
  while (true) {
    const bool has_i = own && i != i_end;
    const bool has_j = j != j_end;
    if (!has_i && !has_j)
      return;
    if (has_i && (!has_j || i->seq > j->seq)) {
      if (!visit(i->notification, i->seq, false))
        return;
      ++i;
    } else {
      if (!visit(j->notification, j->seq, true))
        return;
      ++j;
    }
  }
}

}  // namespace

std::vector<Notification> MemoryStore::view(const UserState* state, std::uint64_t after,
                                            std::uint64_t upto) const {
  std::vector<Notification> out;
  walk_backward(state ? &state->history : nullptr, broadcasts_, upto,
                [&](const Notification& n, std::uint64_t seq, bool is_broadcast) {
                  if (seq <= after)
                    return false;
                  out.push_back(n);
                  if (is_broadcast && state) {
                    auto r = state->broadcast_read_at.find(seq);
                    if (r != state->broadcast_read_at.end())
                      out.back().read_at = r->second;
                  }
                  return true;
                });
  std::reverse(out.begin(), out.end());
  return out;
}

std::uint64_t MemoryStore::unread_locked(const UserState* state) const {
  std::uint64_t read_broadcasts = 0;
  if (state) {
    read_broadcasts = static_cast<std::uint64_t>(
        std::distance(state->broadcast_read_at.upper_bound(broadcasts_evicted_upto_),
                      state->broadcast_read_at.end()));
  }
  return (state ? state->unread : 0) + broadcasts_.size() - read_broadcasts;
}

namespace {
// The recipient and the key: a key holds no NUL (printable ASCII), so the last NUL splits.
std::string recipient_key(const Notification& draft) {
  std::string key = draft.broadcast ? std::string() : draft.user_id;
  key.push_back('\0');
  key += draft.idempotency_key;
  return key;
}
}  // namespace

void MemoryStore::forget_expired_keys() {
  const auto now = std::chrono::steady_clock::now();
  while (!key_expiry_.empty() && key_expiry_.front().first <= now)
    forget_oldest_key();
}

void MemoryStore::forget_oldest_key() {
  kept_keys_.erase(kept_keys_.find(*key_expiry_.front().second));
  key_expiry_.pop_front();
}

Notification MemoryStore::append(Notification draft) {
  std::lock_guard lock(mutex_);
  KeptPublish* kept = nullptr;  // this publish's key, when it has one
  if (!draft.idempotency_key.empty()) {
    forget_expired_keys();
    const auto fingerprint = content_fingerprint(draft);
    const auto [at, added] = kept_keys_.try_emplace(recipient_key(draft));
    if (!added) {
      draft.id = std::to_string(at->second.seq);
      draft.created_at = format_timestamp(at->second.created);
      draft.read_at.clear();
      if (draft.broadcast)
        draft.user_id.clear();
      draft.replayed = true;
      draft.replay_differs = fingerprint != at->second.fingerprint;
      return draft;
    }
    kept = &at->second;
    kept->fingerprint = fingerprint;
    key_expiry_.emplace_back(std::chrono::steady_clock::now() + options_.idempotency_window,
                             &at->first);
    if (kept_keys_.size() > options_.max_idempotency_keys)
      forget_oldest_key();  // not this one: it is the newest
  }
  const auto seq = ++head_;
  const auto created = std::chrono::system_clock::now();
  if (kept) {
    kept->seq = seq;
    kept->created = created;
  }
  draft.id = std::to_string(seq);
  draft.created_at = format_timestamp(created);
  draft.read_at.clear();
  draft.replayed = false;
  draft.replay_differs = false;
  if (draft.broadcast) {
    draft.user_id.clear();
    broadcasts_.push_back(Entry{seq, draft});
    broadcasts_.back().notification.idempotency_key.clear();
    if (broadcasts_.size() > options_.max_broadcasts) {
      broadcasts_evicted_upto_ = broadcasts_.front().seq;
      broadcasts_.pop_front();
    }
    return draft;
  }
  auto& state = user_state(draft.user_id);
  state.history.push_back(Entry{seq, draft});
  state.history.back().notification.idempotency_key.clear();
  ++state.unread;
  if (state.history.size() > options_.max_per_user) {
    if (!state.history.front().notification.is_read())
      --state.unread;
    state.evicted_upto = state.history.front().seq;
    state.history.pop_front();
  }
  return draft;
}

std::uint64_t MemoryStore::head() {
  std::lock_guard lock(mutex_);
  return head_;
}

Snapshot MemoryStore::snapshot(std::string_view user, std::size_t limit) {
  std::lock_guard lock(mutex_);
  const auto* state = find_user(user);
  Snapshot snap;
  snap.cursor = head_;
  snap.unread_count = unread_locked(state);
  walk_backward(state ? &state->history : nullptr, broadcasts_, head_,
                [&](const Notification& n, std::uint64_t seq, bool is_broadcast) {
                  if (snap.unread.size() >= limit)
                    return false;
                  const bool read =
                      is_broadcast ? (state && state->broadcast_read_at.count(seq)) : n.is_read();
                  if (!read)
                    snap.unread.push_back(n);
                  return true;
                });
  return snap;
}

std::optional<Resume> MemoryStore::resume(std::string_view user, std::uint64_t cursor,
                                          std::size_t limit, std::size_t max_missed) {
  std::lock_guard lock(mutex_);
  if (cursor > head_ || (cursor != 0 && cursor < base_))
    return std::nullopt;
  const auto* state = find_user(user);
  if (state && cursor < state->evicted_upto)
    return std::nullopt;
  if (cursor < broadcasts_evicted_upto_)
    return std::nullopt;
  Resume r;
  r.head = head_;
  r.last_read = state ? state->last_read : 0;
  r.missed = view(state, cursor, head_);
  if (r.missed.size() > max_missed)
    return std::nullopt;
  std::uint64_t unread_missed = 0;
  for (const auto& n : r.missed)
    if (!n.is_read())
      ++unread_missed;
  r.snapshot.cursor = cursor;
  r.snapshot.unread_count = unread_locked(state) - unread_missed;
  walk_backward(state ? &state->history : nullptr, broadcasts_, cursor,
                [&](const Notification& n, std::uint64_t seq, bool is_broadcast) {
                  if (r.snapshot.unread.size() >= limit)
                    return false;
                  const bool read =
                      is_broadcast ? (state && state->broadcast_read_at.count(seq)) : n.is_read();
                  if (!read)
                    r.snapshot.unread.push_back(n);
                  return true;
                });
  return r;
}

std::vector<Notification> MemoryStore::list(std::string_view user, bool unread_only,
                                            std::size_t limit) {
  std::lock_guard lock(mutex_);
  const auto* state = find_user(user);
  std::vector<Notification> out;
  walk_backward(state ? &state->history : nullptr, broadcasts_, head_,
                [&](const Notification& n, std::uint64_t seq, bool is_broadcast) {
                  if (out.size() >= limit)
                    return false;
                  std::string read_at = n.read_at;
                  if (is_broadcast && state) {
                    auto r = state->broadcast_read_at.find(seq);
                    if (r != state->broadcast_read_at.end())
                      read_at = r->second;
                  }
                  if (unread_only && !read_at.empty())
                    return true;
                  out.push_back(n);
                  out.back().read_at = std::move(read_at);
                  return true;
                });
  return out;
}

std::uint64_t MemoryStore::unread_count(std::string_view user) {
  std::lock_guard lock(mutex_);
  return unread_locked(find_user(user));
}

ReadResult MemoryStore::mark_read(std::string_view user, std::string_view id) {
  std::lock_guard lock(mutex_);
  ReadResult result;
  const auto seq = parse_sequence(id);
  if (seq) {
    auto& state = user_state(user);
    auto by_seq = [](const Entry& e, std::uint64_t s) { return e.seq < s; };
    auto it = std::lower_bound(state.history.begin(), state.history.end(), *seq, by_seq);
    if (it != state.history.end() && it->seq == *seq) {
      if (!it->notification.is_read()) {
        it->notification.read_at = now_timestamp();
        --state.unread;
        result.ids.push_back(it->notification.id);
      }
    } else {
      auto b = std::lower_bound(broadcasts_.begin(), broadcasts_.end(), *seq, by_seq);
      if (b != broadcasts_.end() && b->seq == *seq) {
        // The marks of broadcasts no longer kept go first: a user who reads each broadcast
        // keeps at most max_broadcasts of them, not one per broadcast ever read.
        state.broadcast_read_at.erase(
            state.broadcast_read_at.begin(),
            state.broadcast_read_at.upper_bound(broadcasts_evicted_upto_));
        if (state.broadcast_read_at.emplace(*seq, now_timestamp()).second)
          result.ids.push_back(b->notification.id);
      }
    }
    if (!result.ids.empty())
      state.last_read = result.seq = ++head_;
  }
  if (result.ids.empty())
    result.seq = head_;
  result.unread_count = unread_locked(find_user(user));
  return result;
}

ReadResult MemoryStore::mark_all_read(std::string_view user) {
  std::lock_guard lock(mutex_);
  ReadResult result;
  auto& state = user_state(user);
  const auto now = now_timestamp();
  for (auto& e : state.history) {
    if (e.notification.is_read())
      continue;
    e.notification.read_at = now;
    result.ids.push_back(e.notification.id);
  }
  state.unread = 0;
  // Forget read marks of broadcasts no longer kept, then mark the kept ones.
  state.broadcast_read_at.erase(state.broadcast_read_at.begin(),
                                state.broadcast_read_at.upper_bound(broadcasts_evicted_upto_));
  for (const auto& b : broadcasts_) {
    if (state.broadcast_read_at.emplace(b.seq, now).second)
      result.ids.push_back(b.notification.id);
  }
  result.seq = result.ids.empty() ? head_ : ++head_;
  if (!result.ids.empty())
    state.last_read = result.seq;
  result.unread_count = unread_locked(&state);
  return result;
}

}  // namespace notify
