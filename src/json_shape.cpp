#include "json_shape.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace notify::detail {

JsonShape shape_of(const nlohmann::json& value, std::size_t max_depth) {
  using value_t = nlohmann::json::value_t;
  JsonShape shape;
  std::vector<std::pair<const nlohmann::json*, std::size_t>> pending{{&value, 1}};
  auto string_bound = [](std::size_t bytes) { return 2 + 6 * bytes; };
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    switch (node->type()) {
      case value_t::object:
      case value_t::array:
        shape.depth = std::max(shape.depth, depth);
        if (depth > max_depth)
          return shape;
        shape.dump_bound += 2 + node->size();  // brackets and commas
        for (auto it = node->begin(); it != node->end(); ++it) {
          if (node->is_object())
            shape.dump_bound += string_bound(it.key().size()) + 1;  // and the colon
          pending.emplace_back(&*it, depth + 1);
        }
        break;
      case value_t::string:
        shape.dump_bound += string_bound(node->get_ref<const std::string&>().size());
        break;
      case value_t::binary:  // {"bytes":[...],"subtype":...}: at most 4 characters a byte
        shape.dump_bound += 64 + 4 * node->get_binary().size();
        break;
      default:  // null, true, false, numbers, discarded
        shape.dump_bound += 32;
        break;
    }
  }
  return shape;
}

}  // namespace notify::detail
