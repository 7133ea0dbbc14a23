// Small pieces every part of the load generator uses: the clock, the latency histogram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace loadgen {

// CLOCK_MONOTONIC in nanoseconds. Timestamps sent in notifications are relative to the
// program's start (small numbers that survive any JSON parser).
inline std::int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Latencies in microseconds: 1 µs buckets up to 10 ms, 100 µs buckets up to 100 s.
class Histogram {
 public:
  Histogram();
  void add(std::int64_t ns) noexcept;
  void clear() noexcept;
  std::uint64_t count() const noexcept { return count_; }
  // Value (ms) at quantile q in [0, 1]; 0 when empty.
  double quantile_ms(double q) const noexcept;
  double max_ms() const noexcept { return static_cast<double>(max_ns_) / 1e6; }
  double mean_ms() const noexcept;
  // "latency_ms fraction" lines, about `points` of them (more in the tail), for a CDF chart.
  std::string cdf(std::size_t points = 400) const;

 private:
  static constexpr std::size_t fine_us = 10000;
  static constexpr std::size_t coarse_step_us = 100;
  static constexpr std::size_t coarse_buckets = 1000000;  // up to 100 s
  static std::size_t bucket_of(std::int64_t us) noexcept;
  static double upper_ms(std::size_t bucket) noexcept;

  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::int64_t max_ns_ = 0;
  long double sum_ns_ = 0;
};

// Parses the decimal digits at the start of `s` (stops at the first non-digit).
inline std::uint64_t parse_u64(const char* p, const char* end) noexcept {
  std::uint64_t v = 0;
  while (p < end && *p >= '0' && *p <= '9')
    v = v * 10 + static_cast<std::uint64_t>(*p++ - '0');
  return v;
}

}  // namespace loadgen
