#include "common.hpp"

#include <algorithm>
#include <cstdio>

namespace loadgen {

Histogram::Histogram() : buckets_(fine_us + coarse_buckets + 1, 0) {}

std::size_t Histogram::bucket_of(std::int64_t us) noexcept {
  if (us < 0)
    us = 0;
  const auto u = static_cast<std::size_t>(us);
  if (u < fine_us)
    return u;
  const std::size_t c = (u - fine_us) / coarse_step_us;
  return fine_us + std::min(c, coarse_buckets);
}

// The upper edge of a bucket, in ms.
double Histogram::upper_ms(std::size_t b) noexcept {
  if (b < fine_us)
    return static_cast<double>(b + 1) / 1000.0;
  return static_cast<double>(fine_us + (b - fine_us + 1) * coarse_step_us) / 1000.0;
}

void Histogram::add(std::int64_t ns) noexcept {
  ++buckets_[bucket_of(ns / 1000)];
  ++count_;
  if (ns > max_ns_)
    max_ns_ = ns;
  sum_ns_ += ns;
}

void Histogram::clear() noexcept {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  max_ns_ = 0;
  sum_ns_ = 0;
}

double Histogram::quantile_ms(double q) const noexcept {
  if (count_ == 0)
    return 0;
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count_));
  if (rank >= count_)
    rank = count_ - 1;
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen > rank)
      return std::min(upper_ms(b), max_ms());
  }
  return max_ms();
}

double Histogram::mean_ms() const noexcept {
  return count_ ? static_cast<double>(sum_ns_ / count_) / 1e6 : 0;
}

std::string Histogram::cdf(std::size_t points) const {
  std::string out;
  if (count_ == 0)
    return out;
  // Quantiles evenly spaced, then denser in the tail (99%..100%).
  std::vector<double> qs;
  for (std::size_t i = 0; i <= points; ++i)
    qs.push_back(0.99 * static_cast<double>(i) / points);
  for (std::size_t i = 1; i <= points / 4; ++i)
    qs.push_back(0.99 + 0.00999 * static_cast<double>(i) / (points / 4));
  qs.push_back(1.0);
  char line[64];
  for (const double q : qs) {
    std::snprintf(line, sizeof line, "%.4f %.6f\n", quantile_ms(q), q);
    out += line;
  }
  return out;
}

}  // namespace loadgen
