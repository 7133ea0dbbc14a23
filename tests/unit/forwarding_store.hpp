// ForwardingStore: a Store that forwards every call to a MemoryStore, for tests that watch
// or hold up some of the calls. It keeps Store::may_block()'s default (true), so the hub
// treats it as a store that waits on I/O. FailingReadsStore: one whose reads can fail.
#pragma once

#include <notify/memory_store.hpp>
#include <notify/store.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

namespace test {

class ForwardingStore : public notify::Store {
 public:
  notify::Notification append(notify::Notification draft) override {
    return memory_.append(std::move(draft));
  }
  std::uint64_t head() override { return memory_.head(); }
  notify::Snapshot snapshot(std::string_view user, std::size_t limit) override {
    before_read();
    return memory_.snapshot(user, limit);
  }
  std::optional<notify::Resume> resume(std::string_view user, std::uint64_t cursor,
                                       std::size_t limit, std::size_t max_missed) override {
    before_read();
    return memory_.resume(user, cursor, limit, max_missed);
  }
  std::vector<notify::Notification> list(std::string_view user, bool unread_only,
                                         std::size_t limit) override {
    before_read();
    return memory_.list(user, unread_only, limit);
  }
  std::uint64_t unread_count(std::string_view user) override {
    before_read();
    return memory_.unread_count(user);
  }
  notify::ReadResult mark_read(std::string_view user, std::string_view id) override {
    return memory_.mark_read(user, id);
  }
  notify::ReadResult mark_all_read(std::string_view user) override {
    return memory_.mark_all_read(user);
  }
  bool keeps_idempotency_keys() const noexcept override { return memory_.keeps_idempotency_keys(); }

 protected:
  // Called first by every read (snapshot, resume, list, unread count).
  virtual void before_read() {}

  notify::MemoryStore memory_;
};

// Throws from every read while `failing`, as a store that is away does.
class FailingReadsStore final : public ForwardingStore {
 public:
  std::atomic<bool> failing{true};

 private:
  void before_read() override {
    if (failing)
      throw std::runtime_error("the store is away");
  }
};

}  // namespace test
