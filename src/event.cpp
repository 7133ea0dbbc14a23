#include <notify/event.hpp>
#include <notify/utf8.hpp>

#include "json_text.hpp"
#include <notify/sse.hpp>
#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>

#include <mutex>
#include <stdexcept>

namespace notify {

bool event_type::is_reserved(std::string_view type) noexcept {
  return type == init || type == notification || type == batch || type == read || type == reset ||
         type == session_end || type == heartbeat;
}

struct Event::Private {};

Event::Event(Private, Kind kind, std::string type, std::string id, std::string data,
             std::uint64_t seq, std::uint64_t first_seq, std::vector<EventPtr> parts)
    : kind_(kind),
      type_(std::move(type)),
      id_(std::move(id)),
      data_(std::move(data)),
      seq_(seq),
      first_seq_(first_seq),
      parts_(std::move(parts)) {}

EventPtr Event::message(std::string type, std::string id, std::string data, std::uint64_t seq) {
  if (!sse::is_valid_event_name(type))
    throw std::invalid_argument("event: the type must be non-empty, without CR, LF or NUL");
  if (!sse::is_valid_id(id))
    throw std::invalid_argument("event: the id must not contain CR, LF or NUL");
  // Checked here rather than when a WebSocket connection first encodes it, where the
  // failure would stop a delivery half-way.
  if (!is_valid_utf8(type))
    throw std::invalid_argument("event: the type is not valid UTF-8");
  if (!is_valid_utf8(id))
    throw std::invalid_argument("event: the id is not valid UTF-8");
  return std::make_shared<const Event>(Private{}, Kind::message, std::move(type), std::move(id),
                                       std::move(data), seq, seq, std::vector<EventPtr>{});
}

EventPtr Event::batch(std::vector<EventPtr> parts) {
  if (parts.empty())
    throw std::invalid_argument("event: a batch needs at least one part");
  std::size_t size = 2;
  for (const auto& p : parts)
    size += p->data().size() + 1;
  std::string data;
  data.reserve(size);
  data += '[';
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i)
      data += ',';
    data += parts[i]->data();
  }
  data += ']';
  const auto& last = parts.back();
  std::string id = last->id();
  const auto seq = last->seq();
  const auto first = parts.front()->first_seq();
  return std::make_shared<const Event>(Private{}, Kind::message, std::string(event_type::batch),
                                       std::move(id), std::move(data), seq, first,
                                       std::move(parts));
}

EventPtr Event::heartbeat() {
  static const EventPtr shared = std::make_shared<const Event>(
      Private{}, Kind::heartbeat, std::string(event_type::heartbeat), std::string(),
      std::string("{}"), 0, 0, std::vector<EventPtr>{});
  return shared;
}

EventPtr Event::raw(std::string bytes) {
  return std::make_shared<const Event>(Private{}, Kind::raw, std::string("raw"), std::string(),
                                       std::move(bytes), 0, 0, std::vector<EventPtr>{});
}

EventPtr trim_to_after(const EventPtr& event, std::uint64_t floor) {
  if (!event || event->seq() == 0 || event->first_seq() > floor)
    return event;
  if (event->seq() <= floor)
    return nullptr;
  std::vector<EventPtr> kept;
  for (const auto& part : event->parts())
    if (part->seq() > floor)
      kept.push_back(part);
  if (kept.size() == 1)
    return kept.front();
  return Event::batch(std::move(kept));
}

namespace {
// Encoding happens once per event and format; one lock for all of them is not contended.
std::mutex encode_mutex;
}  // namespace

const std::string& Event::encode_once(WireFormat format) const {
  const auto index = static_cast<std::size_t>(format);
  std::lock_guard lock(encode_mutex);
  if (!encoded_ready_[index].load(std::memory_order_relaxed)) {
    encoded_[index] = encode_event(*this, format);
    encoded_ready_[index].store(true, std::memory_order_release);
  }
  return encoded_[index];
}

namespace {

// {"type":T,"id":ID,"data":D}: D is already JSON text and is copied as it is.
std::string websocket_text(const Event& event) {
  std::string out;
  out.reserve(event.data().size() + event.type().size() + event.id().size() + 32);
  out += "{\"type\":";
  if (!detail::append_json_string(out, event.type()))
    throw std::invalid_argument("event: the type is not valid UTF-8");
  if (!event.id().empty()) {
    out += ",\"id\":";
    if (!detail::append_json_string(out, event.id()))
      throw std::invalid_argument("event: the id is not valid UTF-8");
  }
  out += ",\"data\":";
  out += event.data().empty() ? std::string("null") : event.data();
  out += '}';
  return out;
}

}  // namespace

std::string encode_event(const Event& event, WireFormat format) {
  if (event.kind() == Event::Kind::raw)
    return event.data();
  switch (format) {
    case WireFormat::sse:
      return sse::encode_event(event.type(), event.id(), event.data());
    case WireFormat::websocket:
      if (event.kind() == Event::Kind::heartbeat)
        return ws::ping_frame() + ws::text_frame(websocket_text(event));
      return ws::text_frame(websocket_text(event));
    case WireFormat::websocket_deflate: {
      const auto text = websocket_text(event);
      auto frame = text.size() < ws::deflate_threshold ? ws::text_frame(text)
                                                       : ws::compressed_text_frame(text);
      if (event.kind() == Event::Kind::heartbeat)
        return ws::ping_frame() + frame;
      return frame;
    }
  }
  throw std::invalid_argument("event: unknown wire format");
}

}  // namespace notify
