// The shape of a JSON value, found without recursion.
//
// nlohmann::json copies, compares, serializes and (in a host's handler) walks a value
// recursively; a request or WebSocket message of brackets nested a few hundred thousand deep
// would overflow the stack there. Checking the depth first, with a stack of our own, keeps
// such input to a protocol answer.
//
// Thread safety: a pure function.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>

namespace notify::detail {

struct JsonShape {
  std::size_t depth = 0;       // arrays and objects nested; 1 for an object of scalars
  std::size_t dump_bound = 0;  // at least value.dump().size()
  bool valid_utf8 = true;      // every string and key is UTF-8 (else dump() throws)
};

// Stops as soon as `value` is nested deeper than `max_depth` (the figures are then partial).
// The bound lets a small value skip the dump() that measures it exactly: a string's bytes
// may each become a 6-byte escape, a number takes at most 32 characters.
JsonShape shape_of(const nlohmann::json& value, std::size_t max_depth);

}  // namespace notify::detail
