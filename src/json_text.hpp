// JSON text written without building a tree, byte for byte as nlohmann::json::dump() writes
// it, for the paths that run once per notification or event.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace notify::detail {

// Appends `s` as a JSON string literal: UTF-8 kept as it is, the two-character escapes where
// JSON has them, \u00XX (lower-case hex) for other control characters. Returns false,
// appending nothing, when `s` is not valid UTF-8 (nlohmann::json::dump() throws then).
bool append_json_string(std::string& out, std::string_view s);

}  // namespace notify::detail
