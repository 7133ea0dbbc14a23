// What the library-only benchmarks (queue-wait, sync-publish) share: a store from its
// command-line spelling, and a percentile of measured values.
#pragma once

#include <notify/store.hpp>
#ifdef NOTIFY_BENCH_WITH_SQLITE
#include <notify/sqlite_store.hpp>
#endif
#ifdef NOTIFY_BENCH_WITH_REDIS
#include <notify/redis_options.hpp>
#include <notify/redis_store.hpp>
#endif

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// `sqlite:PATH` (the file and its -wal and -shm removed first), `redis://HOST:PORT`, or
// `redis://HOST:PORT?publish_appends` (RedisStoreOptions::publish_appends, as a fleet runs).
inline std::shared_ptr<notify::Store> make_store(const std::string& spec) {
#ifdef NOTIFY_BENCH_WITH_SQLITE
  if (spec.rfind("sqlite:", 0) == 0) {
    const std::string path = spec.substr(7);
    for (const char* suffix : {"", "-wal", "-shm"})
      std::remove((path + suffix).c_str());
    return std::make_shared<notify::SqliteStore>(path);
  }
#endif
#ifdef NOTIFY_BENCH_WITH_REDIS
  if (spec.rfind("redis://", 0) == 0) {
    constexpr std::string_view appends = "?publish_appends";
    notify::RedisStoreOptions options;
    options.publish_appends =
        spec.size() > appends.size() &&
        spec.compare(spec.size() - appends.size(), appends.size(), appends) == 0;
    options.redis = notify::parse_redis_url(
        options.publish_appends ? spec.substr(0, spec.size() - appends.size()) : spec);
    options.seed_from_clock = false;
    return std::make_shared<notify::RedisStore>(options);
  }
#endif
  throw std::invalid_argument("--store " + spec + ": not a store this build has");
}

// The value at rank p (0..1) of `values` (not empty), nearest rank.
inline double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[rank];
}

}  // namespace bench
