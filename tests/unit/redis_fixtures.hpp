// Shared by the notify::redis unit tests: a client connection model, an io_context thread,
// and the skip rule (no redis-server installed: each case says so and passes).
#pragma once

#if __has_include(<notify/redis_export.hpp>)
#define NOTIFY_TEST_WITH_REDIS 1

#include <notify/hub.hpp>
#include <notify/redis_bus.hpp>
#include <notify/redis_store.hpp>
#include <notify/sse_sink.hpp>

#include "../support/redis_server.hpp"
#include "fixtures.hpp"

#include <asio/executor_work_guard.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

// Ends the test case (passing) when redis-server is not installed.
#define NOTIFY_REQUIRE_REDIS(server)                                                   \
  do {                                                                                 \
    if (!(server).available()) {                                                       \
      MESSAGE("redis-server is not installed: skipped (scripts/install-deps --test)"); \
      return;                                                                          \
    }                                                                                  \
  } while (0)

namespace redistest {

using namespace std::chrono_literals;

// An io_context run by one thread until destroyed.
struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{asio::make_work_guard(io)};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

inline notify::RedisOptions options_for(const testredis::RedisServer& server,
                                        const std::string& prefix) {
  notify::RedisOptions o;
  o.port = server.port();
  o.prefix = prefix;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  // Generous: a connect on loopback is instant, but a loaded CI machine (a browser test
  // alongside, sanitizers) has stalled the test process for over a second.
  o.connect_timeout = 5000ms;
  return o;
}

inline notify::HubOptions hub_options() {
  return test::no_batching();
}

// One client connection over a RecordingTransport, and what a browser would make of it.
struct Client : test::SseClient {
  using test::SseClient::SseClient;

  // The client's model: the ids it holds in arrival order (a reset replaces them), how many
  // times it received each, and its unread badge.
  struct State {
    std::vector<std::string> ids;
    std::uint64_t unread = 0;
    int resets = 0;
    int duplicates = 0;
    bool in_order = true;
  };
  State state() const {
    State s;
    std::uint64_t last = 0;
    auto add = [&](const std::string& id) {
      const std::uint64_t seq = std::stoull(id);
      if (seq <= last) {
        s.in_order = false;
        for (const auto& have : s.ids)
          if (have == id)
            ++s.duplicates;
      }
      last = std::max(last, seq);
      s.ids.push_back(id);
    };
    for (const auto& e : events()) {
      if (e.type == "init" || e.type == "notifications:reset") {
        if (e.type == "notifications:reset")
          ++s.resets;
        const auto j = nlohmann::json::parse(e.data);
        s.ids.clear();
        last = e.id.empty() ? 0 : std::stoull(e.id);
        auto list = j.at("notifications");
        for (auto it = list.rbegin(); it != list.rend(); ++it)
          s.ids.push_back(it->at("id"));
        s.unread = j.at("unreadCount");
      } else if (e.type == "notification") {
        add(e.id);
        ++s.unread;
      } else if (e.type == "notification:read") {
        s.unread = nlohmann::json::parse(e.data).at("unreadCount");
      }
    }
    return s;
  }
};

inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

using test::draft;

// Records what a RedisBus delivers.
struct Recorder : notify::BusListener {
  std::mutex mutex;
  std::vector<notify::Envelope> messages;
  std::atomic<int> recovered{0};
  void on_bus_message(const notify::Envelope& e) override {
    std::lock_guard lock(mutex);
    messages.push_back(e);
  }
  void on_bus_recovered() override { ++recovered; }
  std::vector<notify::Envelope> taken() {
    std::lock_guard lock(mutex);
    return messages;
  }
};

// The ids of a user's notifications in the store, oldest first.
inline std::vector<std::string> stored_ids(notify::Store& store, const std::string& user) {
  std::vector<std::string> ids;
  for (const auto& n : store.list(user, false, 1000))
    ids.insert(ids.begin(), n.id);
  return ids;
}

// Ids in one string, so that a failed comparison shows which are missing.
inline std::string joined(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids)
    out += id + " ";
  return out;
}

// The client ends up with exactly `ids`, in order, each once.
inline void check_holds_exactly(const Client& client, const std::vector<std::string>& ids) {
  REQUIRE(eventually([&] { return client.state().ids.size() >= ids.size(); }));
  const auto state = client.state();
  CHECK(joined(state.ids) == joined(ids));
  CHECK(state.duplicates == 0);
  CHECK(state.in_order);
}

}  // namespace redistest

#endif
