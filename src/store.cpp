#include <notify/store.hpp>

#include <charconv>

namespace notify {

Store::~Store() = default;

std::optional<std::uint64_t> parse_sequence(std::string_view text) noexcept {
  if (text.empty() || text.size() > 20)
    return std::nullopt;
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end)
    return std::nullopt;
  return value;
}

}  // namespace notify
