// The hub's store thread: async_publish() and the other async calls (completion tokens,
// batches, limits, stop()), and the store reads the hub makes there itself (first primes,
// gap repairs, resyncs) with a store that may block.
#include <notify/hub.hpp>
#include <notify/store.hpp>

#include "fixtures.hpp"
#include "forwarding_store.hpp"
#include "lossy_bus.hpp"
#include "store_factories.hpp"

#include <asio/bind_executor.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/use_future.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using notify::Notification;
using notify::NotificationHub;
using test::draft;
using test::no_batching;

namespace {

using Client = test::SseClient;

// Holds its first append_all() until release(), and records the size of every one and of
// every snapshot_many() and mark_many(), apart and in the order of the calls. With `backward`, the
// later append_all() calls store their drafts last first (ids against the drafts' order, as
// RedisStore's for a draft it had to send again), answered in the drafts' order.
class GateStore final : public test::ForwardingStore {
 public:
  std::atomic<bool> backward{false};

  std::vector<Notification> append_all(std::vector<Notification> drafts) override {
    std::unique_lock lock(mutex_);
    sizes_.push_back(drafts.size());
    calls_.push_back("append " + std::to_string(drafts.size()));
    const bool first = sizes_.size() == 1;
    if (first) {
      changed_.notify_all();
      changed_.wait(lock, [this] { return released_; });
    }
    lock.unlock();
    if (first || !backward)
      return memory_.append_all(std::move(drafts));
    for (auto it = drafts.rbegin(); it != drafts.rend(); ++it)
      *it = memory_.append(std::move(*it));
    return drafts;
  }
  // True once the first append_all() is in the store.
  bool wait_entered() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(5), [this] { return !sizes_.empty(); });
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  std::vector<std::size_t> sizes() const {
    std::lock_guard lock(mutex_);
    return sizes_;
  }
  std::vector<notify::Snapshot> snapshot_many(const std::vector<std::string>& users,
                                              std::size_t limit) override {
    {
      std::lock_guard lock(mutex_);
      snapshot_sizes_.push_back(users.size());
      calls_.push_back("snapshot " + std::to_string(users.size()));
    }
    return Store::snapshot_many(users, limit);
  }
  // Recorded as "mark N"; throws instead while `fail_marks`.
  std::vector<notify::ReadResult> mark_many(const std::vector<notify::MarkQuery>& marks) override {
    {
      std::lock_guard lock(mutex_);
      calls_.push_back("mark " + std::to_string(marks.size()));
    }
    if (fail_marks)
      throw std::runtime_error("the store is away");
    return Store::mark_many(marks);
  }
  std::atomic<bool> fail_marks{false};
  // Says it publishes its appends (RedisStore with publish_appends); it does not, and the
  // hub then sends nothing on the bus: for cases about the order of store calls only.
  std::atomic<bool> publishes{false};
  bool publishes_appends() const noexcept override { return publishes; }
  std::vector<std::size_t> snapshot_sizes() const {
    std::lock_guard lock(mutex_);
    return snapshot_sizes_;
  }
  std::vector<std::string> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  std::vector<std::string> writes() const {  // calls() without the snapshots
    auto out = calls();
    out.erase(std::remove_if(out.begin(), out.end(),
                             [](const std::string& c) { return c.rfind("snapshot", 0) == 0; }),
              out.end());
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::size_t> sizes_, snapshot_sizes_;
  std::vector<std::string> calls_;
  bool released_ = false;
};

// Records the thread of every read the hub makes (snapshot, resume, list, unread count) and
// of every append_all(), the store thread's write.
class ThreadWatchStore final : public test::ForwardingStore {
 public:
  std::vector<Notification> append_all(std::vector<Notification> drafts) override {
    {
      std::lock_guard lock(mutex_);
      writers_.insert(std::this_thread::get_id());
    }
    return memory_.append_all(std::move(drafts));
  }
  std::size_t reads() const {
    std::lock_guard lock(mutex_);
    return reads_;
  }
  std::set<std::thread::id> readers() const {
    std::lock_guard lock(mutex_);
    return readers_;
  }
  std::set<std::thread::id> writers() const {
    std::lock_guard lock(mutex_);
    return writers_;
  }

 private:
  void before_read() override {
    std::lock_guard lock(mutex_);
    ++reads_;
    readers_.insert(std::this_thread::get_id());
  }
  mutable std::mutex mutex_;
  std::size_t reads_ = 0;
  std::set<std::thread::id> readers_, writers_;
};

// The ids a client saw in order: those in its `init` (oldest first), then every
// notification event.
std::vector<std::string> seen_ids(const Client& client) {
  std::vector<std::string> seen;
  for (const auto& e : client.events()) {
    if (e.type == "init") {
      const auto init = nlohmann::json::parse(e.data);
      const auto& listed = init.at("notifications");
      for (auto it = listed.rbegin(); it != listed.rend(); ++it)
        seen.push_back(it->at("id").get<std::string>());
    } else if (e.type == "notification") {
      seen.push_back(e.id);
    }
  }
  return seen;
}

// The completions of async_publish() calls, in the order they ran (on the test's thread).
struct Outcomes {
  std::vector<std::pair<std::exception_ptr, std::string>> got;
  auto handler() {
    return [this](std::exception_ptr error, std::string id) {
      got.emplace_back(error, std::move(id));
    };
  }
};

std::error_code code_of(const std::exception_ptr& error) {
  try {
    if (error)
      std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return e.code();
  } catch (...) {
    return std::make_error_code(std::errc::invalid_argument);  // not a system_error
  }
  return {};
}

// An async publish to `user` held in `store`'s first append_all(), and `queued` more queued
// behind it. False when the store was not entered.
bool hold_with_queue(NotificationHub& hub, GateStore& store, Outcomes& out, const std::string& user,
                     int queued) {
  hub.async_publish(draft(user, "held"), out.handler());
  if (!store.wait_entered())
    return false;
  for (int i = 0; i < queued; ++i)
    hub.async_publish(draft(user, std::to_string(i)), out.handler());
  return true;
}

// Runs `calls` on a thread of its own while `store` holds its first append_all(), until
// `pending` calls wait in the hub's queue (or 10 s have passed), then lets the store go on
// and joins the thread. Returns what `calls` threw ("" when nothing); `queued` says whether
// the calls were seen waiting.
template <typename Calls>
std::string run_behind_held_batch(asio::io_context& io, NotificationHub& hub, GateStore& store,
                                  std::size_t pending, bool& queued, Calls calls) {
  std::string error;
  std::thread caller([&] {
    try {
      calls();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  queued = test::run_until(
      io, [&] { return hub.metrics().publishes_pending == pending; }, std::chrono::seconds(10));
  store.release();
  caller.join();
  return error;
}

bool increasing(const std::vector<std::string>& ids) {
  for (std::size_t i = 1; i < ids.size(); ++i)
    if (std::stoull(ids[i - 1]) >= std::stoull(ids[i]))
      return false;
  return true;
}

}  // namespace

TEST_CASE("async_publish: what is queued while the store writes goes in its next append_all") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client client(io, hub, "a");
  REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));

  const auto busy_before = hub.metrics().store_thread_busy_us;  // the client's first read
  const auto held_from = std::chrono::steady_clock::now();
  Outcomes out;
  hub.async_publish(draft("a", "0"), out.handler());
  REQUIRE(store->wait_entered());
  for (int i = 1; i <= 50; ++i)
    hub.async_publish(draft("a", std::to_string(i)), out.handler());
  CHECK(hub.metrics().publishes_pending == 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  store->release();

  REQUIRE(test::run_until(io, [&] { return out.got.size() == 51; }));
  const auto held_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - held_from)
                           .count();
  CHECK(store->sizes() == std::vector<std::size_t>{1, 50});
  std::vector<std::string> acked;
  for (const auto& [error, id] : out.got) {
    CHECK_FALSE(error);
    acked.push_back(id);
  }
  CHECK(increasing(acked));  // stored in the order of the calls

  REQUIRE(test::run_until(io, [&] { return client.count() == 52; }));
  const auto events = client.events();
  for (std::size_t i = 0; i < acked.size(); ++i)
    CHECK(events[i + 1].id == acked[i]);
  const auto m = hub.metrics();
  CHECK(m.publish_batches == 2);
  CHECK(m.publishes_pending == 0);
  CHECK(m.publishes == 51);
  // The held call took at least 20 ms, and both calls ended within `held_us`.
  CHECK(m.store_thread_busy_us - busy_before >= 20000);
  CHECK(m.store_thread_busy_us - busy_before <= static_cast<std::uint64_t>(held_us));
  const auto text = hub.metrics_text();
  CHECK(text.find("notify_publish_batches_total 2\n") != std::string::npos);
  // The store thread is idle now, so the text shows the same count, in seconds. No bound on
  // its size: a slow machine may well spend more than 0.1 s here.
  std::string micros = std::to_string(m.store_thread_busy_us % 1000000);
  micros.insert(0, 6 - micros.size(), '0');
  CHECK(text.find("notify_store_thread_busy_seconds_total " +
                  std::to_string(m.store_thread_busy_us / 1000000) + "." + micros + "\n") !=
        std::string::npos);
  hub.stop();
}

TEST_CASE("async_publish: a batch goes to the bus in id order; a refusal fails the calls left") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  store->backward = true;
  auto bus = std::make_shared<test::LossyBus>();
  NotificationHub hub(io.get_executor(), no_batching(), store, bus);
  Client client(io, hub, "a");
  REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));

  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 4));
  // The held call's publish and two of the batch's go; the third is refused.
  bus->refuse_after(3);
  store->release();
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 5; }));
  CHECK(store->sizes() == std::vector<std::size_t>{1, 4});

  // The batch's last draft has the lowest id: the drafts "3" and "2" were sent, "1" was
  // refused and "0" not sent, so those two calls fail; the others have their ids.
  CHECK_FALSE(out.got[0].first);
  CHECK(code_of(out.got[1].first) == notify::errc::bus_unavailable);
  CHECK(code_of(out.got[2].first) == notify::errc::bus_unavailable);
  CHECK_FALSE(out.got[3].first);
  CHECK_FALSE(out.got[4].first);
  const auto held = out.got[0].second, two = out.got[3].second, three = out.got[4].second;
  CHECK(std::stoull(three) < std::stoull(two));
  REQUIRE(test::run_until(io, [&] { return client.count() == 4; }));
  CHECK(seen_ids(client) == std::vector<std::string>{held, three, two});
  // The unsent two are stored (a reconnecting client gets them), above every sent id.
  const auto listed = store->list("a", false, 10);
  REQUIRE(listed.size() == 5);
  CHECK(listed[0].title == "0");
  CHECK(listed[1].title == "1");
  hub.stop();
}

TEST_CASE("async_publish: completes on the token's executor, never inside the call") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());  // MemoryStore: written in the call

  bool called = false;
  std::string acked;
  hub.async_publish(draft("a"), [&](std::exception_ptr error, std::string id) {
    CHECK_FALSE(error);
    CHECK(io.get_executor().running_in_this_thread());
    called = true;
    acked = std::move(id);
  });
  CHECK_FALSE(called);
  const auto stored = hub.list("a", false, 10);
  REQUIRE(stored.size() == 1);  // a store that does not block is written in the call
  REQUIRE(test::run_until(io, [&] { return called; }));
  CHECK(acked == stored[0].id);

  asio::io_context other;
  bool on_other = false;
  hub.async_publish(draft("a"),
                    asio::bind_executor(other, [&](std::exception_ptr error, std::string) {
                      CHECK_FALSE(error);
                      on_other = other.get_executor().running_in_this_thread();
                    }));
  other.run();  // returns once the handler ran: the pending operation counts as work
  CHECK(on_other);

  auto future = hub.async_publish(draft("b"), asio::use_future);
  auto broadcast = Notification(test::broadcast("to all"));
  broadcast.user_id = "ignored for a broadcast";
  auto broadcast_future = hub.async_publish(broadcast, asio::use_future);
  auto running = asio::make_work_guard(io);  // until io.stop() below
  std::thread runner([&] {
    io.restart();
    io.run();
  });
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  REQUIRE(broadcast_future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const std::string id = future.get();
  CHECK(notify::parse_sequence(id).has_value());
  const std::string broadcast_id = broadcast_future.get();
  const auto b = hub.list("b", false, 10);
  REQUIRE(b.size() == 2);
  CHECK(b[0].id == broadcast_id);
  CHECK(b[0].broadcast);
  CHECK(b[1].id == id);

  hub.stop();
  // The error is read on the handler's thread: with use_future the promise, and with it the
  // last reference to the exception, may be released on asio's system thread after this one
  // read the message, and the exception's count is invisible to ThreadSanitizer.
  std::promise<std::error_code> refused;
  hub.async_publish(draft("a"), [&](std::exception_ptr error, std::string) {
    refused.set_value(code_of(error));
  });
  auto code = refused.get_future();
  REQUIRE(code.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(code.get() == notify::errc::hub_stopped);
  io.stop();
  runner.join();
}

TEST_CASE("async_publish_to: its notifications share a store call with the publishes beside it") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client a(io, hub, "a"), b(io, hub, "b"), c(io, hub, "c");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count() && c.count(); }));

  Outcomes singles;
  hub.async_publish(draft("a", "first"), singles.handler());
  REQUIRE(store->wait_entered());
  std::vector<std::string> to_three;
  bool to_three_done = false;
  hub.async_publish_to({"c", "a", "b"}, draft("", "to three"),
                       [&](std::exception_ptr error, std::vector<std::string> ids) {
                         CHECK_FALSE(error);
                         to_three = std::move(ids);
                         to_three_done = true;
                       });
  hub.async_publish(draft("b", "after"), singles.handler());
  store->release();

  REQUIRE(test::run_until(io, [&] { return to_three_done && singles.got.size() == 2; }));
  CHECK(store->sizes() == std::vector<std::size_t>{1, 4});
  REQUIRE(to_three.size() == 3);
  CHECK(increasing(
      {singles.got[0].second, to_three[0], to_three[1], to_three[2], singles.got[1].second}));
  REQUIRE(test::run_until(io, [&] { return a.count() == 3 && b.count() == 3 && c.count() == 2; }));
  CHECK(c.events()[1].id == to_three[0]);
  CHECK(a.events()[2].id == to_three[1]);
  CHECK(b.events()[1].id == to_three[2]);
  CHECK(b.events()[2].id == singles.got[1].second);

  CHECK_THROWS_WITH_AS(hub.async_publish_to({"a", ""}, draft(""),
                                            [](std::exception_ptr, std::vector<std::string>) {}),
                       "userId: missing", notify::ValidationError);
  auto none = hub.async_publish_to({}, draft(""), asio::use_future);
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  REQUIRE(none.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(none.get().empty());
  hub.stop();
  io.stop();
  runner.join();
}

TEST_CASE("async_publish: repeats of an idempotency key in one batch get the first id, sent once") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client a(io, hub, "a"), b(io, hub, "b");
  REQUIRE(test::run_until(io, [&] { return a.count() && b.count(); }));

  Outcomes singles;
  auto held = draft("a", "held");
  held.idempotency_key = "held";
  hub.async_publish(held, singles.handler());
  REQUIRE(store->wait_entered());
  auto shipped = draft("a", "shipped");
  shipped.idempotency_key = "order-42";
  hub.async_publish(shipped, singles.handler());
  hub.async_publish(shipped, singles.handler());  // a retry, in the same batch
  hub.async_publish(held, singles.handler());     // a retry of the call in the store
  std::vector<std::vector<std::string>> to_two;
  auto digest = draft("", "digest");
  digest.idempotency_key = "digest";
  for (int i = 0; i < 2; ++i)
    hub.async_publish_to({"a", "b"}, digest,
                         [&](std::exception_ptr error, std::vector<std::string> ids) {
                           CHECK_FALSE(error);
                           to_two.push_back(std::move(ids));
                         });
  store->release();

  REQUIRE(test::run_until(io, [&] { return singles.got.size() == 4 && to_two.size() == 2; }));
  CHECK(store->sizes() == std::vector<std::size_t>{1, 7});
  for (const auto& [error, id] : singles.got)
    CHECK_FALSE(error);
  CHECK(singles.got[1].second == singles.got[2].second);
  CHECK(singles.got[3].second == singles.got[0].second);
  CHECK(singles.got[1].second != singles.got[0].second);
  CHECK(to_two[0] == to_two[1]);
  hub.async_publish(draft("a", "last"), singles.handler());
  REQUIRE(test::run_until(io, [&] { return a.count() == 5 && b.count() == 2; }));
  io.run_for(std::chrono::milliseconds(50));
  CHECK(a.count() == 5);  // init, held, shipped, digest, last
  CHECK(b.count() == 2);
  CHECK(a.events()[2].id == singles.got[1].second);
  CHECK(a.events()[3].id == to_two[0][0]);
  CHECK(hub.metrics().publish_replays == 4);
  hub.stop();
}

TEST_CASE("async_publish: a reused idempotency key fails its own call, not its batch") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client a(io, hub, "a");
  REQUIRE(test::run_until(io, [&] { return a.count() == 1; }));

  Outcomes out;
  auto first = draft("a", "first");
  first.idempotency_key = "k";
  hub.async_publish(first, out.handler());
  REQUIRE(store->wait_entered());
  hub.async_publish(draft("a", "before"), out.handler());
  auto reused = draft("a", "not the first");
  reused.idempotency_key = "k";
  hub.async_publish(reused, out.handler());
  hub.async_publish(draft("a", "after"), out.handler());
  store->release();

  REQUIRE(test::run_until(io, [&] { return out.got.size() == 4; }));
  CHECK(store->sizes() == std::vector<std::size_t>{1, 3});
  CHECK_FALSE(out.got[0].first);
  CHECK_FALSE(out.got[1].first);
  CHECK_FALSE(out.got[3].first);
  REQUIRE(out.got[2].first);
  try {
    std::rethrow_exception(out.got[2].first);
  } catch (const notify::ValidationError& e) {
    CHECK(e.field() == "idempotencyKey");
  }
  REQUIRE(test::run_until(io, [&] { return a.count() == 4; }));
  io.run_for(std::chrono::milliseconds(50));
  CHECK(a.count() == 4);  // init, first, before, after
  CHECK(a.events()[3].id == out.got[3].second);
  hub.stop();
}

TEST_CASE("async_publish_to: with a MemoryStore, stored in the call") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  auto future = hub.async_publish_to({"x", "y"}, draft("", "both"), asio::use_future);
  CHECK(hub.list("x", false, 10).size() == 1);
  CHECK(hub.list("y", false, 10).size() == 1);
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const auto ids = future.get();
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] == hub.list("x", false, 10)[0].id);
  CHECK(ids[1] == hub.list("y", false, 10)[0].id);
  hub.stop();
  io.stop();
  runner.join();
}

TEST_CASE("async_mark_all_read: waits in line with the publishes around it, in no batch") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client client(io, hub, "a");
  REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));

  Outcomes publishes;
  hub.async_publish(draft("a", "held"), publishes.handler());
  REQUIRE(store->wait_entered());
  hub.async_publish(draft("a", "before the read"), publishes.handler());
  std::optional<notify::ReadResult> read;
  hub.async_mark_all_read("a", [&](std::exception_ptr error, notify::ReadResult result) {
    CHECK_FALSE(error);
    read = std::move(result);
  });
  hub.async_publish(draft("a", "after the read"), publishes.handler());
  CHECK(hub.metrics().publishes_pending == 3);
  store->release();

  REQUIRE(test::run_until(io, [&] { return read && publishes.got.size() == 3; }));
  CHECK(store->sizes() == std::vector<std::size_t>{1, 1, 1});  // the read splits the batch
  const auto& ids = publishes.got;
  CHECK(std::set<std::string>(read->ids.begin(), read->ids.end()) ==
        std::set<std::string>{ids[0].second, ids[1].second});
  CHECK(read->unread_count == 0);
  const auto unread = hub.list("a", true, 10);
  REQUIRE(unread.size() == 1);
  CHECK(unread[0].id == ids[2].second);

  REQUIRE(test::run_until(io, [&] { return client.count() == 5; }));
  const auto events = client.events();
  CHECK(events[1].id == ids[0].second);
  CHECK(events[2].id == ids[1].second);
  CHECK(events[3].type == "notification:read");
  CHECK(events[4].id == ids[2].second);

  CHECK_THROWS_AS(hub.async_mark_all_read("", [](std::exception_ptr, notify::ReadResult) {}),
                  std::invalid_argument);
  hub.stop();
  bool refused = false;
  hub.async_mark_read("a", ids[2].second, [&](std::exception_ptr error, notify::ReadResult) {
    refused = code_of(error) == notify::errc::hub_stopped;
  });
  REQUIRE(test::run_until(io, [&] { return refused; }));
}

TEST_CASE("async_mark_read: with a MemoryStore, changed in the call") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  const auto id = hub.publish(draft("a"));
  auto future = hub.async_mark_read("a", id, asio::use_future);
  CHECK(hub.unread_count("a") == 0);
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const auto result = future.get();
  CHECK(result.ids == std::vector<std::string>{id});
  CHECK(result.unread_count == 0);
  hub.stop();
  io.stop();
  runner.join();
}

TEST_CASE("async_publish: an invalid draft throws in the call and queues nothing") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  store->release();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Outcomes out;
  auto untitled = draft("alice");
  untitled.title.clear();
  CHECK_THROWS_WITH_AS(hub.async_publish(untitled, out.handler()), "title: missing",
                       notify::ValidationError);
  CHECK_THROWS_WITH_AS(hub.async_publish(draft(""), out.handler()), "userId: missing",
                       notify::ValidationError);
  hub.async_publish(draft("alice"), out.handler());
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 1; }));
  CHECK_FALSE(out.got[0].first);
  CHECK(store->sizes() == std::vector<std::size_t>{1});
  hub.stop();
}

TEST_CASE("async_publish: past max_pending_publishes a publish is refused, the queued ones stay") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  auto options = no_batching();
  options.max_pending_publishes = 3;
  NotificationHub hub(io.get_executor(), options, store);
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 3));
  hub.async_publish(draft("a", "one too many"), out.handler());
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 1; }));
  CHECK(code_of(out.got[0].first) == notify::errc::too_many_pending_publishes);

  store->release();
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 5; }));
  for (std::size_t i = 1; i < out.got.size(); ++i)
    CHECK_FALSE(out.got[i].first);
  CHECK(hub.list("a", false, 10).size() == 4);
  hub.stop();

  options.max_pending_publishes = 0;  // would refuse every async_publish()
  CHECK_THROWS_AS(NotificationHub(io.get_executor(), options, store), std::invalid_argument);
}

TEST_CASE("async_publish: stop() completes every queued publish with hub_stopped") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client client(io, hub, "a");  // its close shows that stop() has begun
  REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 5));

  std::thread stopper([&] { hub.stop(); });  // waits for the store thread
  const bool stopping = test::run_until(io, [&] { return client.transport->closed(); });
  store->release();
  stopper.join();
  REQUIRE(stopping);

  REQUIRE(test::run_until(io, [&] { return out.got.size() == 6; }));
  for (std::size_t i = 1; i < out.got.size(); ++i)
    CHECK(code_of(out.got[i].first) == notify::errc::hub_stopped);
  CHECK(store->sizes().size() == 1);  // the queued ones never reached the store
  hub.async_publish(draft("a", "after"), out.handler());
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 7; }));
  CHECK(code_of(out.got[6].first) == notify::errc::hub_stopped);
}

TEST_CASE("publish(): alone it writes in the call; beside a busy store thread, in its next batch") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  auto options = no_batching();
  options.max_pending_publishes = 2;  // bounds the queued calls no thread waits for
  NotificationHub hub(io.get_executor(), options, store);
  Client client(io, hub, "a");
  REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));

  const auto alone = hub.publish(draft("a", "alone"));
  CHECK(store->sizes().empty());  // Store::append() on this thread: no append_all(), no batch
  CHECK(hub.metrics().publish_batches == 0);

  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));
  constexpr std::size_t callers = 5;
  std::vector<std::string> ids(callers), errors(callers);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < callers; ++i)
    threads.emplace_back([&, i] {
      try {
        ids[i] = hub.publish(draft("a", std::to_string(i)));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  // Each waits in the queue, not for the sequence lock the held batch has.
  const bool queued = test::run_until(
      io, [&] { return hub.metrics().publishes_pending == callers; }, std::chrono::seconds(10));
  store->release();
  for (auto& t : threads)
    t.join();
  REQUIRE(queued);

  CHECK(store->sizes() == std::vector<std::size_t>{1, callers});
  CHECK(hub.metrics().publish_batches == 2);
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 1; }));
  CHECK_FALSE(out.got[0].first);
  std::vector<std::string> stored{alone, out.got[0].second};
  for (std::size_t i = 0; i < callers; ++i) {
    CHECK(errors[i] == "");
    stored.push_back(ids[i]);
  }
  std::sort(stored.begin() + 2, stored.end(), [](const std::string& x, const std::string& y) {
    return std::stoull(x) < std::stoull(y);
  });
  CHECK(increasing(stored));
  REQUIRE(test::run_until(io, [&] { return client.count() == 1 + stored.size(); }));
  CHECK(seen_ids(client) == stored);
  hub.stop();
}

TEST_CASE("publish(): a thread's async_publish() before it is stored first") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));

  // Behind the async one, not racing it for the sequence lock once the held batch ends.
  std::string sync_id;
  bool queued = false;
  const auto error = run_behind_held_batch(io, hub, *store, 2, queued, [&] {
    hub.async_publish(draft("a", "async"), out.handler());
    sync_id = hub.publish(draft("a", "sync"));
  });
  REQUIRE(queued);
  REQUIRE(error == "");
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 2; }));
  CHECK(std::stoull(out.got[0].second) < std::stoull(out.got[1].second));
  CHECK(std::stoull(out.got[1].second) < std::stoull(sync_id));
  CHECK(store->sizes() == std::vector<std::size_t>{1, 2});  // "async" and "sync" together
  hub.stop();
}

TEST_CASE("mark_all_read(): beside a busy store thread, after the thread's async_publish()") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));

  std::optional<notify::ReadResult> read;
  bool queued = false;
  const auto error = run_behind_held_batch(io, hub, *store, 2, queued, [&] {
    hub.async_publish(draft("a", "before the read"), out.handler());
    read = hub.mark_all_read("a");
  });
  REQUIRE(queued);
  REQUIRE(error == "");
  REQUIRE(read);
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 2; }));
  CHECK(std::set<std::string>(read->ids.begin(), read->ids.end()) ==
        std::set<std::string>{out.got[0].second, out.got[1].second});
  CHECK(read->unread_count == 0);
  CHECK(store->sizes() == std::vector<std::size_t>{1, 1});  // the change is a call of its own
  hub.stop();
}

TEST_CASE(
    "publish(): with a store that publishes its appends, after the thread's async_publish()") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  store->publishes = true;
  NotificationHub hub(io.get_executor(), no_batching(), store);
  // Alone, calls write in the call: no append_all.
  const auto alone = hub.publish(draft("a", "alone"));
  CHECK(store->writes().empty());

  // An async publish held in the store, then a publish(): it waits its turn behind the held
  // call (it used to write in the call at once, before the held one).
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));
  std::string sync_id;
  bool queued = false;
  const auto error = run_behind_held_batch(io, hub, *store, 1, queued,
                                           [&] { sync_id = hub.publish(draft("a", "sync")); });
  REQUIRE(error == "");
  REQUIRE(queued);
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 1; }));
  REQUIRE_FALSE(out.got[0].first);
  CHECK(std::stoull(alone) < std::stoull(out.got[0].second));  // "held"
  CHECK(std::stoull(out.got[0].second) < std::stoull(sync_id));
  CHECK(store->writes() == std::vector<std::string>{"append 1", "append 1"});
  hub.stop();
}

TEST_CASE("read-state changes queued together are made in one mark_many(), each answered") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client alice(io, hub, "a"), bob(io, hub, "b");
  REQUIRE(test::run_until(io, [&] { return alice.count() == 1 && bob.count() == 1; }));
  const auto a1 = hub.publish(draft("a", "a1"));  // in the call: no append_all
  const auto b1 = hub.publish(draft("b", "b1"));
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));

  // Three async changes and a synchronous one from another thread, all behind the held
  // batch: the next batch is the four of them, one store call.
  std::vector<std::optional<notify::ReadResult>> reads(3);
  const auto keep = [&](std::size_t i) {
    return [&reads, i](std::exception_ptr error, notify::ReadResult result) {
      CHECK_FALSE(error);
      reads[i] = std::move(result);
    };
  };
  hub.async_mark_read("a", a1, keep(0));
  hub.async_mark_all_read("b", keep(1));
  hub.async_mark_read("a", "no such id", keep(2));
  std::optional<notify::ReadResult> sync_read;
  bool queued = false;
  const auto error = run_behind_held_batch(io, hub, *store, 4, queued,
                                           [&] { sync_read = hub.mark_all_read("a"); });
  REQUIRE(queued);
  REQUIRE(error == "");
  REQUIRE(test::run_until(io, [&] { return reads[0] && reads[1] && reads[2]; }));
  REQUIRE(out.got.size() == 1);
  const auto held = out.got[0].second;
  CHECK(store->writes() == std::vector<std::string>{"append 1", "mark 4"});
  CHECK(hub.metrics().mark_batches == 1);
  CHECK(hub.metrics_text().find("notify_mark_batches_total 1\n") != std::string::npos);

  using Ids = std::vector<std::string>;
  CHECK(reads[0]->ids == Ids{a1});
  CHECK(reads[1]->ids == Ids{b1});
  CHECK(reads[1]->unread_count == 0);
  CHECK(reads[2]->ids.empty());
  REQUIRE(sync_read);
  CHECK(sync_read->ids == Ids{held});
  CHECK(sync_read->unread_count == 0);
  CHECK(reads[0]->seq < reads[1]->seq);
  CHECK(reads[1]->seq < sync_read->seq);
  // Each change that changed something reached its user's connection, in order.
  REQUIRE(test::run_until(io, [&] { return alice.count() == 5 && bob.count() == 3; }));
  const auto a = alice.events();
  CHECK(a[3].type == "notification:read");
  CHECK(nlohmann::json::parse(a[3].data).at("ids") == nlohmann::json{a1});
  CHECK(a[4].type == "notification:read");
  CHECK(nlohmann::json::parse(a[4].data).at("ids") == nlohmann::json{held});
  CHECK(bob.events()[2].type == "notification:read");
  hub.stop();
}

TEST_CASE("read-state changes of one batch fail together when the store fails it") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  const auto a1 = hub.publish(draft("a", "a1"));
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));
  store->fail_marks = true;
  // Async calls only: their handlers read the one exception on this thread (see the note on
  // shared exceptions in publish_batch()).
  std::vector<std::string> errors(3);
  const auto keep = [&](std::size_t i) {
    return [&errors, i](std::exception_ptr error, notify::ReadResult) {
      try {
        if (error)
          std::rethrow_exception(error);
        errors[i] = "none";
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    };
  };
  hub.async_mark_read("a", a1, keep(0));
  hub.async_mark_all_read("b", keep(1));
  hub.async_mark_all_read("a", keep(2));
  CHECK(hub.metrics().publishes_pending == 3);
  store->release();
  REQUIRE(test::run_until(
      io, [&] { return !errors[0].empty() && !errors[1].empty() && !errors[2].empty(); }));
  CHECK(errors == std::vector<std::string>(3, "the store is away"));
  CHECK(store->writes() == std::vector<std::string>{"append 1", "mark 3"});
  // Nothing was changed: the store refused the call.
  CHECK(hub.list("a", true, 10).size() == 2);
  store->fail_marks = false;
  CHECK(hub.mark_read("a", a1).ids == std::vector<std::string>{a1});  // alone: in the call
  CHECK(hub.metrics().mark_batches == 0);  // a failed call is not counted
  hub.stop();
}

TEST_CASE("publish(): one waiting in the queue when stop() comes throws hub_stopped") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Client client(io, hub, "a");  // its close shows that stop() has begun
  REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "a", 0));

  std::error_code code;
  std::thread caller([&] {
    try {
      hub.publish(draft("a", "waits"));
    } catch (const std::system_error& e) {
      code = e.code();
    }
  });
  const bool queued = test::run_until(
      io, [&] { return hub.metrics().publishes_pending == 1; }, std::chrono::seconds(10));
  std::thread stopper([&] { hub.stop(); });
  const bool stopping = test::run_until(io, [&] { return client.transport->closed(); });
  store->release();
  stopper.join();
  caller.join();
  REQUIRE(queued);
  REQUIRE(stopping);
  CHECK(code == notify::errc::hub_stopped);
  CHECK(store->sizes().size() == 1);  // it never reached the store
}

TEST_CASE("store thread: new connections are primed there, missing and repeating nothing") {
  asio::io_context io;
  auto store = std::make_shared<ThreadWatchStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  std::vector<std::string> published;
  for (int i = 0; i < 10; ++i)
    published.push_back(hub.publish(draft("alice", "before " + std::to_string(i))));
  const std::string cursor = published[4];
  std::mutex m;
  std::thread publisher([&] {
    for (int i = 0; i < 300; ++i) {
      auto id = hub.publish(draft("alice", std::to_string(i)));
      std::lock_guard lock(m);
      published.push_back(id);
    }
  });
  const auto publisher_thread = publisher.get_id();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  Client fresh(io, hub, "alice");
  Client resumed(io, hub, "alice", cursor);
  publisher.join();
  auto caught_up = [&](const Client& c) {
    const auto seen = seen_ids(c);
    return !seen.empty() && seen.back() == published.back();
  };
  REQUIRE(test::run_until(io, [&] { return caught_up(fresh) && caught_up(resumed); }));
  io.run_for(std::chrono::milliseconds(20));

  // `init` lists at most snapshot_limit (50): what follows it must continue that list with
  // no gap and no repeat, up to the last one published.
  const auto seen = seen_ids(fresh);
  REQUIRE(seen.size() >= 50);
  CHECK(seen == std::vector<std::string>(published.end() - static_cast<long>(seen.size()),
                                         published.end()));
  std::vector<std::string> replayed;
  for (const auto& e : resumed.events())
    if (e.type == "notification")
      replayed.push_back(e.id);
  CHECK(resumed.of_type("init").size() == 1);
  CHECK(replayed == std::vector<std::string>(published.begin() + 5, published.end()));

  // Every read ran on one thread, neither the attaching one nor the publisher: the thread
  // that writes async publishes.
  Outcomes out;
  hub.async_publish(draft("alice", "async"), out.handler());
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 1; }));
  const auto readers = store->readers();
  CHECK(store->reads() >= 2);
  CHECK(readers.size() == 1);
  CHECK(readers.count(std::this_thread::get_id()) == 0);
  CHECK(readers.count(publisher_thread) == 0);
  CHECK(store->writers() == readers);
  hub.stop();
}

TEST_CASE("store thread: a connection attached while a publish is in the store gets it once") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "alice", 0));
  Client client(io, hub, "alice");
  io.run_for(std::chrono::milliseconds(20));
  CHECK(client.count() == 0);  // its read waits its turn behind the store call
  store->release();
  REQUIRE(test::run_until(io, [&] { return client.count() >= 1 && out.got.size() == 1; }));
  io.run_for(std::chrono::milliseconds(20));
  // The live event came while the connection waited for its read, and the read had it.
  REQUIRE(client.count() == 1);
  CHECK(client.events()[0].type == "init");
  const auto init = nlohmann::json::parse(client.events()[0].data);
  REQUIRE(init["notifications"].size() == 1);
  CHECK(init["notifications"][0]["id"] == out.got[0].second);
  CHECK(init["unreadCount"] == 1);
  hub.async_publish(draft("alice", "after"), out.handler());
  REQUIRE(test::run_until(io, [&] { return client.count() == 2; }));
  CHECK(client.events()[1].id == out.got[1].second);
  hub.stop();
}

TEST_CASE("store thread: a new connection is read after the call in progress, not the queue") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "alice", 600));  // batches of 256, 256 and 88
  Client client(io, hub, "alice");
  std::optional<notify::Inbox> listed;
  hub.async_list("alice", true, 1000, [&](std::exception_ptr error, notify::Inbox inbox) {
    CHECK_FALSE(error);
    listed = std::move(inbox);
  });
  io.run_for(std::chrono::milliseconds(20));
  CHECK(hub.metrics().connections_awaiting_read == 1);
  store->release();

  REQUIRE(test::run_until(io, [&] { return out.got.size() == 601 && listed.has_value(); }));
  REQUIRE(test::run_until(io, [&] {
    const auto seen = seen_ids(client);
    return !seen.empty() && seen.back() == out.got.back().second;
  }));
  // The connection's read took the next turn; async_list() keeps its place in line, so it
  // sees every publish queued before it.
  CHECK(store->calls() == std::vector<std::string>{"append 1", "snapshot 1", "append 256",
                                                   "append 256", "append 88"});
  CHECK(listed->unread_count == 601);
  CHECK(listed->notifications.size() == 601);
  // The `init` has the held publish; the 600 queued ones come live, once each and in order.
  const auto init = nlohmann::json::parse(client.of_type("init").at(0).data);
  CHECK(init["unreadCount"] == 1);
  std::vector<std::string> acked;
  for (const auto& [error, id] : out.got)
    acked.push_back(id);
  CHECK(seen_ids(client) == acked);
  hub.stop();
}

TEST_CASE("store thread: repair turns and the queue's batches take turns") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  Outcomes out;
  REQUIRE(hold_with_queue(hub, *store, out, "other", 600));  // batches of 256, 256 and 88
  std::vector<std::unique_ptr<Client>> clients;              // first reads of 16, 16 and 8
  for (int i = 0; i < 40; ++i)
    clients.push_back(std::make_unique<Client>(io, hub, "u" + std::to_string(i)));
  store->release();

  REQUIRE(test::run_until(io, [&] {
    return out.got.size() == 601 &&
           std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->count() == 1; });
  }));
  // Neither waits for all of the other: 40 connections do not hold up the publishes, and 600
  // publishes do not hold up the connections.
  CHECK(store->calls() == std::vector<std::string>{"append 1", "snapshot 16", "append 256",
                                                   "snapshot 16", "append 256", "snapshot 8",
                                                   "append 88"});
  hub.stop();
}

TEST_CASE("store thread: a connection whose first read fails is told to come back later") {
  asio::io_context io;
  auto store = std::make_shared<test::FailingReadsStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  hub.set_error_handler([](std::string_view) {});
  Client client(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return client.transport->closed(); }));
  // An event stream that ends (EventSource then reconnects), not an error status (it would
  // give up) nor a connection dropped without an answer.
  const auto bytes = client.transport->bytes();
  CHECK(bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(bytes.find("\r\n\r\nretry: 2000\n\n: the store is unavailable; reconnect later\n\n") !=
        std::string::npos);
  CHECK(client.count() == 0);
  CHECK(hub.connection_count() == 0);
  CHECK(hub.metrics().handler_errors == 1);

  store->failing = false;
  Client again(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return again.of_type("init").size() == 1; }));
  hub.stop();
}

namespace {
// A store whose next read throws what is not a std::exception, once.
class OddThrowStore final : public test::ForwardingStore {
 public:
  std::atomic<bool> armed{true};

 private:
  void before_read() override {
    if (armed.exchange(false))
      throw 42;
  }
};
}  // namespace

TEST_CASE("store thread: a read that throws what is not a std::exception closes that connection") {
  asio::io_context io;
  auto store = std::make_shared<OddThrowStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  hub.set_error_handler([&](std::string_view what) {
    std::lock_guard lock(errors_mutex);
    errors.emplace_back(what);
  });
  Client first(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return first.transport->closed(); }));
  CHECK(first.count() == 0);
  {
    std::lock_guard lock(errors_mutex);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].find("not derived from std::exception") != std::string::npos);
  }
  // The store thread and its repair task go on.
  Client second(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return second.of_type("init").size() == 1; }));
  Outcomes out;
  hub.async_publish(draft("alice"), out.handler());
  REQUIRE(test::run_until(io, [&] { return second.count() == 2 && out.got.size() == 1; }));
  CHECK_FALSE(out.got[0].first);
  hub.stop();
}

TEST_CASE("store thread: gap repairs and resyncs read the store there") {
  asio::io_context io;
  auto store = std::make_shared<ThreadWatchStore>();
  auto bus = std::make_shared<test::LossyBus>();
  auto options = no_batching();
  options.queue.max_events = 4;
  NotificationHub hub(io.get_executor(), options, store, bus);
  Client alice(io, hub, "alice"), bob(io, hub, "bob");
  REQUIRE(test::run_until(io, [&] { return alice.count() == 1 && bob.count() == 1; }));
  const auto reads_to_prime = store->reads();

  bus->lose(true);
  const auto lost = hub.publish(draft("alice", "lost"));
  bus->recover();
  REQUIRE(test::run_until(io, [&] { return alice.count() == 3 && bob.count() == 2; }));
  CHECK(alice.events()[1].id == lost);
  CHECK(alice.events()[2].type == "notification:read");
  CHECK(nlohmann::json::parse(alice.events()[2].data)["unreadCount"] == 1);
  CHECK(hub.metrics().gap_repairs == 2);
  const auto reads_to_repair = store->reads();
  CHECK(reads_to_repair > reads_to_prime);

  // bob falls behind by more than his queue holds: reset from a snapshot.
  bob.transport->stall();
  hub.publish(draft("bob", "first"));
  io.run_for(std::chrono::milliseconds(20));  // now in flight
  std::string last;
  for (int i = 0; i < 10; ++i)
    last = hub.publish(draft("bob", std::to_string(i)));
  io.run_for(std::chrono::milliseconds(20));
  bob.transport->release();
  REQUIRE(test::run_until(io, [&] { return !bob.of_type("notifications:reset").empty(); }));
  const auto reset = bob.of_type("notifications:reset");
  REQUIRE(reset.size() == 1);
  CHECK(reset[0].id == last);
  CHECK(nlohmann::json::parse(reset[0].data)["unreadCount"] == 11);
  CHECK(hub.metrics().resyncs == 1);
  CHECK(store->reads() > reads_to_repair);

  const auto readers = store->readers();
  CHECK(readers.size() == 1);
  CHECK(readers.count(std::this_thread::get_id()) == 0);
  hub.stop();
}

TEST_CASE("store thread: the resets of connections that overflowed together share store calls") {
  asio::io_context io;
  auto store = std::make_shared<GateStore>();
  auto options = no_batching();
  options.queue.max_events = 4;
  NotificationHub hub(io.get_executor(), options, store);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 20; ++i)
    clients.push_back(std::make_unique<Client>(io, hub, "u" + std::to_string(i)));
  REQUIRE(test::run_until(io, [&] {
    return std::all_of(clients.begin(), clients.end(), [](auto& c) { return c->count() == 1; });
  }));
  const auto primed_with = store->snapshot_sizes().size();

  for (auto& c : clients)
    c->transport->stall();
  hub.broadcast(test::broadcast("first"));
  io.run_for(std::chrono::milliseconds(20));  // in flight on every connection
  std::string last;
  for (int i = 0; i < 10; ++i)
    last = hub.broadcast(test::broadcast(std::to_string(i)));  // every queue overflows
  Outcomes out;
  hub.async_publish(draft("other"), out.handler());
  REQUIRE(store->wait_entered());  // the store thread is busy: the resets queue up behind
  for (auto& c : clients)
    c->transport->release();
  io.run_for(std::chrono::milliseconds(50));  // each write completes, each sink asks for its reset
  CHECK(hub.metrics().resyncs == 0);
  CHECK(hub.metrics().connections_awaiting_read == 20);
  CHECK(hub.metrics_text().find("\nnotify_connections_awaiting_read 20\n") != std::string::npos);
  store->release();

  REQUIRE(test::run_until(io, [&] {
    return std::all_of(clients.begin(), clients.end(),
                       [](auto& c) { return !c->of_type("notifications:reset").empty(); });
  }));
  REQUIRE(test::run_until(io, [&] { return out.got.size() == 1; }));
  for (const auto& c : clients) {
    const auto reset = c->of_type("notifications:reset");
    REQUIRE(reset.size() == 1);
    // Read after the held publish was stored: the cursor is its id, one past the last broadcast.
    CHECK(reset[0].id == out.got[0].second);
    CHECK(std::stoull(reset[0].id) == std::stoull(last) + 1);
    CHECK(nlohmann::json::parse(reset[0].data)["unreadCount"] == 11);
  }
  CHECK(hub.metrics().resyncs == 20);
  CHECK(hub.metrics().connections_awaiting_read == 0);
  const auto sizes = store->snapshot_sizes();
  CHECK(std::vector<std::size_t>(sizes.begin() + static_cast<long>(primed_with), sizes.end()) ==
        std::vector<std::size_t>{16, 4});
  const auto live = hub.broadcast(test::broadcast("after"));
  REQUIRE(test::run_until(io, [&] {
    return std::all_of(clients.begin(), clients.end(),
                       [&](auto& c) { return c->events().back().id == live; });
  }));
  hub.stop();
}

TEST_CASE("async_list: the notifications and the unread count, read off the calling thread") {
  asio::io_context io;
  auto store = std::make_shared<ThreadWatchStore>();
  NotificationHub hub(io.get_executor(), no_batching(), store);
  const auto one = hub.publish(draft("alice", "one"));
  const auto two = hub.publish(draft("alice", "two"));
  hub.mark_read("alice", one);

  std::vector<std::pair<std::exception_ptr, notify::Inbox>> got;
  bool on_io = true;
  auto record = [&](std::exception_ptr error, notify::Inbox inbox) {
    on_io = on_io && io.get_executor().running_in_this_thread();
    got.emplace_back(std::move(error), std::move(inbox));
  };
  hub.async_list("alice", false, 10, record);
  hub.async_list("alice", true, 10, record);
  CHECK(got.empty());
  REQUIRE(test::run_until(io, [&] { return got.size() == 2; }));
  CHECK(on_io);
  CHECK_FALSE(got[0].first);
  REQUIRE(got[0].second.notifications.size() == 2);
  CHECK(got[0].second.notifications[0].id == two);  // newest first
  CHECK(got[0].second.notifications[1].id == one);
  CHECK(got[0].second.unread_count == 1);
  REQUIRE(got[1].second.notifications.size() == 1);
  CHECK(got[1].second.notifications[0].id == two);
  const auto readers = store->readers();
  CHECK(readers.size() == 1);
  CHECK(readers.count(std::this_thread::get_id()) == 0);

  CHECK_THROWS_AS(hub.async_list("", false, 10, record), std::invalid_argument);
  hub.stop();
  hub.async_list("alice", false, 10, record);
  REQUIRE(test::run_until(io, [&] { return got.size() == 3; }));
  CHECK(code_of(got[2].first) == notify::errc::hub_stopped);
}

TEST_CASE("async_list: with a MemoryStore, read in the call and completed after it") {
  asio::io_context io;
  NotificationHub hub(io.get_executor(), no_batching());
  const auto id = hub.publish(draft("alice"));
  std::optional<notify::Inbox> got;
  hub.async_list("alice", false, 10, [&](std::exception_ptr error, notify::Inbox inbox) {
    CHECK_FALSE(error);
    got = std::move(inbox);
  });
  CHECK_FALSE(got);
  REQUIRE(test::run_until(io, [&] { return got.has_value(); }));
  REQUIRE(got->notifications.size() == 1);
  CHECK(got->notifications[0].id == id);
  CHECK(got->unread_count == 1);
}

TEST_SUITE("concurrency") {
  TEST_CASE_TEMPLATE(
      "async_publish: publishers on three threads, each id acknowledged once, in call order, "
      "stored and delivered",
      Factory, NOTIFY_TEST_STORES) {
    asio::io_context io;
    std::shared_ptr<notify::Store> store = Factory::make();
    NotificationHub hub(io.get_executor(), no_batching(), store);
    Client client(io, hub, "u");
    REQUIRE(test::run_until(io, [&] { return client.count() == 1; }));

    constexpr int threads = 3;
    constexpr int per_thread = 100;
    std::vector<std::vector<std::string>> acked(threads);  // completions run on this thread
    int errors = 0;
    int completed = 0;
    std::vector<std::thread> publishers;
    for (int t = 0; t < threads; ++t) {
      publishers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i)
          hub.async_publish(draft("u", std::to_string(t) + "-" + std::to_string(i)),
                            [&, t](std::exception_ptr error, std::string id) {
                              ++completed;
                              if (error)
                                ++errors;
                              else
                                acked[t].push_back(std::move(id));
                            });
      });
    }
    for (auto& p : publishers)
      p.join();
    REQUIRE(test::run_until(
        io, [&] { return completed == threads * per_thread; }, std::chrono::seconds(30)));
    CHECK(errors == 0);
    std::set<std::string> all;
    for (const auto& ids : acked) {
      CHECK(ids.size() == per_thread);
      CHECK(increasing(ids));
      all.insert(ids.begin(), ids.end());
    }
    CHECK(all.size() == threads * per_thread);

    REQUIRE(test::run_until(
        io, [&] { return client.count() == 1 + threads * per_thread; }, std::chrono::seconds(30)));
    std::vector<std::string> delivered;
    for (const auto& e : client.events())
      if (e.type == "notification")
        delivered.push_back(e.id);
    CHECK(increasing(delivered));
    CHECK(std::set<std::string>(delivered.begin(), delivered.end()) == all);
    CHECK(hub.list("u", false, 1000).size() == threads * per_thread);
    if (store->may_block())
      CHECK(hub.metrics().publish_batches >= 1);
    else
      CHECK(hub.metrics().publish_batches == 0);
    hub.stop();
  }
}
