// The stores the Store contract tests run against, each behind a factory, and small draft
// builders. NOTIFY_TEST_STORES lists the factories: SqliteStore joins when the test runner
// is linked with notify::sqlite (its generated export header is on the include path then).
#pragma once

#include <notify/memory_store.hpp>
#include <notify/store.hpp>

#include "fixtures.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#if __has_include(<notify/sqlite_export.hpp>)
#include <notify/sqlite_store.hpp>
#define NOTIFY_TEST_HAVE_SQLITE 1
#endif

namespace test {

struct StoreLimits {
  std::size_t per_user = 1000;
  std::size_t broadcasts = 1000;
  std::chrono::milliseconds idempotency_window = std::chrono::hours(24);
};

struct MemoryStoreFactory {
  static std::unique_ptr<notify::Store> make(StoreLimits limits = {}) {
    notify::MemoryStoreOptions options;
    options.max_per_user = limits.per_user;
    options.max_broadcasts = limits.broadcasts;
    options.seed_from_clock = false;  // ids 1, 2, 3... as the contract cases expect
    options.idempotency_window = limits.idempotency_window;
    return std::make_unique<notify::MemoryStore>(options);
  }
};

#ifdef NOTIFY_TEST_HAVE_SQLITE
struct SqliteStoreFactory {
  static std::unique_ptr<notify::Store> make(StoreLimits limits = {}) {
    notify::SqliteStoreOptions options;
    options.max_per_user = limits.per_user;
    options.max_broadcasts = limits.broadcasts;
    options.seed_from_clock = false;  // ids 1, 2, 3... as the contract cases expect
    options.idempotency_window = limits.idempotency_window;
    return std::make_unique<notify::SqliteStore>(":memory:", options);
  }
};
#define NOTIFY_TEST_STORES test::MemoryStoreFactory, test::SqliteStoreFactory
#else
#define NOTIFY_TEST_STORES test::MemoryStoreFactory
#endif

}  // namespace test

// RedisStore joins when the runner is linked with notify::redis and redis-server was found
// when configuring (tests/CMakeLists.txt defines NOTIFY_TEST_REDIS_SERVER). One server for
// the whole run, started on first use; each store gets a prefix of its own.
#if __has_include(<notify/redis_export.hpp>) && defined(NOTIFY_TEST_REDIS_SERVER)
#include <notify/redis_store.hpp>

#include "../support/redis_server.hpp"

#include <atomic>
#include <stdexcept>
#define NOTIFY_TEST_HAVE_REDIS 1
namespace test {
struct RedisStoreFactory {
  static std::unique_ptr<notify::Store> make(StoreLimits limits = {}) {
    static testredis::RedisServer server;
    static std::atomic<int> next{0};
    if (!server.available())
      throw std::runtime_error("redis-server is not installed");
    notify::RedisStoreOptions options;
    options.redis.port = server.port();
    options.redis.prefix = "contract:" + std::to_string(++next) + ":";
    // A loopback connect is instant, but a machine loaded by sanitizer suites side by side
    // has stalled one for over 2 s (the default).
    options.redis.connect_timeout = std::chrono::seconds(10);
    options.max_per_user = limits.per_user;
    options.max_broadcasts = limits.broadcasts;
    options.seed_from_clock = false;  // ids 1, 2, 3... as the contract cases expect
    options.idempotency_window = limits.idempotency_window;
    options.pool_size = 1;
    return std::make_unique<notify::RedisStore>(options);
  }
};
}  // namespace test
#undef NOTIFY_TEST_STORES
#ifdef NOTIFY_TEST_HAVE_SQLITE
#define NOTIFY_TEST_STORES \
  test::MemoryStoreFactory, test::SqliteStoreFactory, test::RedisStoreFactory
#else
#define NOTIFY_TEST_STORES test::MemoryStoreFactory, test::RedisStoreFactory
#endif
#endif

// Test case names end in <memory>, <sqlite> or <redis>, so -tc='*sqlite*' selects one store.
TYPE_TO_STRING_AS("memory", test::MemoryStoreFactory);
#ifdef NOTIFY_TEST_HAVE_SQLITE
TYPE_TO_STRING_AS("sqlite", test::SqliteStoreFactory);
#endif
#ifdef NOTIFY_TEST_HAVE_REDIS
TYPE_TO_STRING_AS("redis", test::RedisStoreFactory);
#endif
