// TypingRelay: an example of a host handler for a client message (NotificationHub::on_message).
//
// A WebSocket client sends {"type":"typing","to":"bob","context":"conversation-7"}; the relay
// forwards {"from":"alice","context":"conversation-7"} to every connection of bob as an
// ephemeral "typing" event (NotificationHub::send_to: never stored, never replayed).
//
//   - At most one relay per `min_interval` for each (sender, recipient) pair; extra messages
//     are dropped silently (a client sends one per keystroke burst, the indicator lives a few
//     seconds on the other side).
//   - Only between users the host allows: allowed() is the hook where a real host checks its
//     ACL (same conversation, same team, not blocked, ...). The demo knows no such thing and
//     allows any two distinct users (`--typing-pairs any`) or nobody (`--typing-pairs none`).
//   - Invalid messages are answered on the sender's connection only with
//     {"type":"error","data":{"message":"...","type":"typing"}}.
//
// Thread safety: the handler runs on each connection's executor, possibly on several threads
// at once; the rate limiter is behind a mutex.
#pragma once

#include <notify/hub.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace demo {

struct TypingOptions {
  enum class Pairs { any, none };
  Pairs pairs = Pairs::any;
  std::chrono::milliseconds min_interval{500};  // per (sender, recipient)
  std::size_t max_context_bytes = 256;
  // Pairs remembered by the rate limiter at most (expired ones are swept as the map grows);
  // at the cap, messages of new pairs are dropped until some expire.
  std::size_t max_tracked_pairs = 100000;
};

class TypingRelay : public std::enable_shared_from_this<TypingRelay> {
 public:
  static constexpr std::string_view message_type = "typing";

  // Registers the "typing" handler on `hub`. The hub keeps the relay alive.
  static std::shared_ptr<TypingRelay> install(notify::NotificationHub& hub, TypingOptions options);

  TypingRelay(notify::NotificationHub& hub, TypingOptions options);

  // The ACL hook: may `from` show `to` that they are typing in `context`? A real host looks
  // this up (e.g. both are members of the conversation `context`). `from` != `to`, both
  // non-empty, is checked before.
  bool allowed(std::string_view from, std::string_view to, std::string_view context) const;

  // Handles one "typing" message (what install() registers).
  void handle(const notify::ClientMessage& message);

 private:
  // True when a relay from -> to is due (and records it); false to drop this one.
  bool take_slot(const std::string& from, const std::string& to);

  notify::NotificationHub& hub_;
  TypingOptions options_;

  std::mutex mutex_;
  using Clock = std::chrono::steady_clock;
  std::unordered_map<std::string, Clock::time_point> last_relay_;  // "from\0to" -> when
  std::size_t sweep_at_ = 1024;  // drop the expired pairs when the map reaches this size
  Clock::time_point no_sweep_before_{};
};

}  // namespace demo
