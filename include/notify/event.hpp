// Event: what one client receives (an SSE event or a WebSocket message).
//
// An event is immutable once made and shared by every connection it goes to: its bytes are
// encoded once per wire format, on first use, and then only referenced.
//
// Thread safety: all member functions are safe to call concurrently on a shared Event.
#pragma once

#include <notify/export.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace notify {

// The encodings a connection can speak. Each Event caches one encoding per format.
//   sse                 an event-stream event
//   websocket           a text frame {"type":T,"id":ID,"data":D} ("id" only when the event has one)
//   websocket_deflate   the same, compressed with permessage-deflate when it is large enough
//                       (each message compressed on its own, so the frame is shareable)
enum class WireFormat : std::uint8_t { sse = 0, websocket = 1, websocket_deflate = 2 };
inline constexpr std::size_t wire_format_count = 3;

// Event type names, shared by SSE (`event:`) and WebSocket (`{"type":..}`).
namespace event_type {
inline constexpr std::string_view init = "init";
inline constexpr std::string_view notification = "notification";
inline constexpr std::string_view batch = "notifications:batch";
inline constexpr std::string_view read = "notification:read";
inline constexpr std::string_view reset = "notifications:reset";
inline constexpr std::string_view session_end = "session:end";
// A keep-alive a client can see (with no other traffic, its silence means a dead connection).
inline constexpr std::string_view heartbeat = "heartbeat";
// Whether `type` is one of the above: the hub's own, which a host cannot send.
NOTIFY_EXPORT bool is_reserved(std::string_view type) noexcept;
}  // namespace event_type

class Event;
using EventPtr = std::shared_ptr<const Event>;

class NOTIFY_EXPORT Event {
 public:
  // message: an event for clients; heartbeat: a keep-alive (below); raw: bytes for one
  // connection, the same in every format (a pong, a close frame).
  enum class Kind : std::uint8_t { message, heartbeat, raw };

  // A message event. `data` is serialized JSON. `id` is what an SSE client gets as its
  // last event id (empty: the event carries none). `seq` orders the event against a
  // store cursor: 0 means "not ordered" and is never filtered. Throws std::invalid_argument
  // for an empty type, a type or id with CR, LF or NUL, or one that is not UTF-8.
  static EventPtr message(std::string type, std::string id, std::string data, std::uint64_t seq);

  // A `notifications:batch` event made of notification events, oldest first. Its id and
  // seq are those of the last part.
  static EventPtr batch(std::vector<EventPtr> parts);

  // A keep-alive: an SSE event `heartbeat` with data {} (a comment would not reach the
  // page's script, which then could not tell a quiet connection from a dead one); over a
  // WebSocket a ping, whose pong tells the server the client lives, and the message
  // {"type":"heartbeat","data":{}}, which tells the client the server does.
  static EventPtr heartbeat();

  // Bytes written as they are, whatever the wire format.
  static EventPtr raw(std::string bytes);

  Kind kind() const noexcept { return kind_; }
  const std::string& type() const noexcept { return type_; }
  const std::string& id() const noexcept { return id_; }
  const std::string& data() const noexcept { return data_; }
  std::uint64_t seq() const noexcept { return seq_; }
  // The smallest seq the event covers (a batch's first part); equals seq() otherwise.
  std::uint64_t first_seq() const noexcept { return first_seq_; }
  const std::vector<EventPtr>& parts() const noexcept { return parts_; }

  // The bytes of this event on the wire, encoded on first use and cached. After the first
  // call for a format this is one acquire load (it runs once per delivery).
  const std::string& encoded(WireFormat format) const {
    const auto index = static_cast<std::size_t>(format);
    if (encoded_ready_[index].load(std::memory_order_acquire))
      return encoded_[index];
    return encode_once(format);
  }

  // Size of the encoded bytes; encodes if needed.
  std::size_t encoded_size(WireFormat format) const { return encoded(format).size(); }

  struct Private;  // restricts the constructor to the factories
  Event(Private, Kind kind, std::string type, std::string id, std::string data, std::uint64_t seq,
        std::uint64_t first_seq, std::vector<EventPtr> parts);

 private:
  Kind kind_;
  std::string type_;
  std::string id_;
  std::string data_;
  std::uint64_t seq_;
  std::uint64_t first_seq_;
  std::vector<EventPtr> parts_;
  const std::string& encode_once(WireFormat format) const;

  mutable std::array<std::atomic<bool>, wire_format_count> encoded_ready_{};
  mutable std::array<std::string, wire_format_count> encoded_;
};

// What of `event` a connection primed at cursor `floor` still needs: the event itself when
// it is unordered (seq 0) or entirely after the floor, nothing when entirely at or before
// it, and for a batch that straddles the floor a new batch of the parts after it.
NOTIFY_EXPORT EventPtr trim_to_after(const EventPtr& event, std::uint64_t floor);

// Encodes an event for one wire format (what Event::encoded() caches). Exposed so that
// tests call the real encoder.
NOTIFY_EXPORT std::string encode_event(const Event& event, WireFormat format);

}  // namespace notify
