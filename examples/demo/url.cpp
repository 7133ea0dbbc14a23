#include "url.hpp"

namespace demo {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size())
        return std::nullopt;
      const int hi = hex_value(text[i + 1]);
      const int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::vector<std::string>> split_path(std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/')
    return std::nullopt;
  std::vector<std::string> segments;
  std::size_t start = 1;
  while (true) {
    const std::size_t slash = raw_path.find('/', start);
    const std::string_view raw = raw_path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    auto decoded = percent_decode(raw, false);
    if (!decoded)
      return std::nullopt;
    segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  return segments;
}

std::optional<QueryParams> QueryParams::parse(std::string_view raw_query) {
  QueryParams params;
  std::size_t start = 0;
  while (start <= raw_query.size()) {
    std::size_t amp = raw_query.find('&', start);
    if (amp == std::string_view::npos)
      amp = raw_query.size();
    const std::string_view pair = raw_query.substr(start, amp - start);
    if (!pair.empty()) {
      const std::size_t eq = pair.find('=');
      auto name = percent_decode(pair.substr(0, eq), true);
      auto value = percent_decode(
          eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
      if (!name || !value)
        return std::nullopt;
      params.items_.emplace_back(std::move(*name), std::move(*value));
    }
    start = amp + 1;
  }
  return params;
}

const std::string* QueryParams::find(std::string_view name) const noexcept {
  for (const auto& item : items_) {
    if (item.first == name)
      return &item.second;
  }
  return nullptr;
}

}  // namespace demo
