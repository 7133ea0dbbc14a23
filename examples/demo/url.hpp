// Percent-decoding of request targets: path segments and query parameters.
//
// Pure functions of their arguments; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace demo {

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in query strings).
// nullopt when an escape is malformed ("%", "%4", "%zz").
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

// The decoded segments of an absolute path: "/api/notifications/7/read" gives
// {"api", "notifications", "7", "read"}; "/" gives {""}. nullopt on a bad escape or when the
// path does not start with '/'.
std::optional<std::vector<std::string>> split_path(std::string_view raw_path);

// The parameters of a query string ("a=1&b=x%20y"), decoded, in order.
class QueryParams {
 public:
  // nullopt on a bad escape.
  static std::optional<QueryParams> parse(std::string_view raw_query);

  // The first value of `name`, or nullptr.
  const std::string* find(std::string_view name) const noexcept;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace demo
