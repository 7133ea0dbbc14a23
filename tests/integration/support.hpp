// Shared helpers of the integration tests.
#pragma once

#include "demo_process.hpp"
#include "http_client.hpp"
#include "sse_reader.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace itest {

// The common server: no batching, so that each notification is one event.
inline std::vector<std::string> unbatched(std::vector<std::string> more = {}) {
  std::vector<std::string> args{"--batch-ms", "0"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// The ids of a JSON array of notifications, in order.
inline std::vector<std::string> ids_of(const nlohmann::json& notifications) {
  std::vector<std::string> ids;
  for (const auto& n : notifications)
    ids.push_back(n.at("id").get<std::string>());
  return ids;
}

// Reads `count` notification events and returns their ids.
inline std::vector<std::string> read_ids(SseStream& s, std::size_t count) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < count; ++i) {
    const auto e = s.expect("notification");
    REQUIRE(e.id.has_value());
    ids.push_back(*e.id);
  }
  return ids;
}

}  // namespace itest
