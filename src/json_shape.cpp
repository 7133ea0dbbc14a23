#include "json_shape.hpp"

#include <notify/utf8.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace notify::detail {

JsonShape shape_of(const nlohmann::json& value, std::size_t max_depth) {
  using value_t = nlohmann::json::value_t;
  const auto is_container = [](const nlohmann::json& j) { return j.is_object() || j.is_array(); };
  const auto string_bound = [](std::size_t bytes) { return 2 + 6 * bytes; };
  JsonShape shape;
  const auto scalar_bound = [&](const nlohmann::json& j) -> std::size_t {
    switch (j.type()) {
      case value_t::string: {
        const auto& text = j.get_ref<const std::string&>();
        if (shape.valid_utf8 && !is_valid_utf8(text))
          shape.valid_utf8 = false;
        return string_bound(text.size());
      }
      case value_t::binary:  // {"bytes":[...],"subtype":...}: at most 4 characters a byte
        return 64 + 4 * j.get_binary().size();
      default:  // null, true, false, numbers, discarded
        return 32;
    }
  };
  // Containers still to visit. Scalars are counted where they are met, so a flat object or
  // array (a notification's usual `data`) is measured without allocating.
  std::vector<std::pair<const nlohmann::json*, std::size_t>> pending;
  const nlohmann::json* node = &value;
  std::size_t depth = 1;
  while (true) {
    if (!is_container(*node)) {
      shape.dump_bound += scalar_bound(*node);
    } else {
      shape.depth = std::max(shape.depth, depth);
      if (depth > max_depth)
        return shape;
      shape.dump_bound += 2 + node->size();  // brackets and commas
      for (auto it = node->begin(); it != node->end(); ++it) {
        if (node->is_object()) {
          shape.dump_bound += string_bound(it.key().size()) + 1;  // and the colon
          if (shape.valid_utf8 && !is_valid_utf8(it.key()))
            shape.valid_utf8 = false;
        }
        if (is_container(*it))
          pending.emplace_back(&*it, depth + 1);
        else
          shape.dump_bound += scalar_bound(*it);
      }
    }
    if (pending.empty())
      return shape;
    std::tie(node, depth) = pending.back();
    pending.pop_back();
  }
}

}  // namespace notify::detail
