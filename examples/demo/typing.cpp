#include "typing.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

namespace demo {
namespace {

constexpr std::size_t max_user_bytes = 256;

void reject(const notify::ClientMessage& message, const std::string& why) {
  notify::NotificationHub::reply_error(message, why);
}

// 1..256 bytes without control characters (the JSON parser already checked the UTF-8).
bool is_user_id(const std::string& user) {
  if (user.empty() || user.size() > max_user_bytes)
    return false;
  return std::none_of(user.begin(), user.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

}  // namespace

std::shared_ptr<TypingRelay> TypingRelay::install(notify::NotificationHub& hub,
                                                  TypingOptions options) {
  auto relay = std::make_shared<TypingRelay>(hub, options);
  hub.on_message(std::string(message_type),
                 [relay](const notify::ClientMessage& message) { relay->handle(message); });
  return relay;
}

TypingRelay::TypingRelay(notify::NotificationHub& hub, TypingOptions options)
    : hub_(hub), options_(options) {}

bool TypingRelay::allowed(std::string_view from, std::string_view to,
                          std::string_view context) const {
  // >>> The hook point: a real host checks its ACL here, e.g. that `from` and `to` are both
  // members of the conversation `context` and that `to` has not blocked `from`. <<<
  (void)from;
  (void)to;
  (void)context;
  return options_.pairs == TypingOptions::Pairs::any;
}

void TypingRelay::handle(const notify::ClientMessage& message) {
  const auto& body = message.body;

  const auto to_it = body.find("to");
  if (to_it == body.end() || to_it->is_null())
    return reject(message, "to: missing");
  if (!to_it->is_string() || !is_user_id(to_it->get_ref<const std::string&>()))
    return reject(message, "to: must be a user id (1 to 256 bytes, no control characters)");
  const std::string& to = to_it->get_ref<const std::string&>();
  if (to == message.user)
    return reject(message, "to: cannot be yourself");

  std::string context;
  if (const auto it = body.find("context"); it != body.end() && !it->is_null()) {
    if (!it->is_string())
      return reject(message, "context: must be a string");
    context = it->get<std::string>();
    if (context.size() > options_.max_context_bytes)
      return reject(
          message, "context: longer than " + std::to_string(options_.max_context_bytes) + " bytes");
  }

  if (!allowed(message.user, to, context))
    return reject(message, "typing indicators to '" + to + "' are not allowed");

  if (!take_slot(message.user, to))
    return;  // too soon after the last one: dropped
  hub_.send_to(to, std::string(message_type), {{"from", message.user}, {"context", context}});
}

bool TypingRelay::take_slot(const std::string& from, const std::string& to) {
  std::string key;
  key.reserve(from.size() + 1 + to.size());
  key.append(from).push_back('\0');
  key.append(to);

  const auto now = Clock::now();
  std::lock_guard lock(mutex_);
  if (const auto it = last_relay_.find(key); it != last_relay_.end()) {
    if (now - it->second < options_.min_interval)
      return false;
    it->second = now;
    return true;
  }
  if (last_relay_.size() >= sweep_at_ && now >= no_sweep_before_) {
    // Forget the pairs whose interval is over (they would be let through anyway). The next
    // sweep waits until the map has doubled, so sweeping stays amortized O(1); at the cap,
    // until every pair kept now has expired.
    for (auto it = last_relay_.begin(); it != last_relay_.end();) {
      it = now - it->second >= options_.min_interval ? last_relay_.erase(it) : std::next(it);
    }
    sweep_at_ =
        std::min(std::max<std::size_t>(2 * last_relay_.size(), 1024), options_.max_tracked_pairs);
    no_sweep_before_ = last_relay_.size() >= options_.max_tracked_pairs
                           ? now + options_.min_interval
                           : Clock::time_point{};
  }
  if (last_relay_.size() >= options_.max_tracked_pairs)
    return false;
  last_relay_.emplace(std::move(key), now);
  return true;
}

}  // namespace demo
