// The message format of RedisBus's channels (redis_bus.hpp: encode_bus_message).
#include <notify/redis_bus.hpp>
#include <notify/store.hpp>

#include "bus_message.hpp"
#include "connection.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>

namespace notify {
namespace redis_detail {

std::optional<std::chrono::system_clock::time_point> time_at_unix_ms(std::int64_t ms) {
  constexpr auto last = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::duration::max())
                            .count();
  if (ms < 0 || ms > last)
    return std::nullopt;
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

std::string encode_bus_message(const Envelope& envelope, std::string_view origin) {
  if (!envelope.event)
    throw std::invalid_argument("notify: an envelope needs an event");
  const Event& e = *envelope.event;
  nlohmann::json header = nlohmann::json::object();
  header["t"] = e.type();
  if (!e.id().empty())
    header["i"] = e.id();
  if (e.seq() != 0)
    header["s"] = std::to_string(e.seq());
  if (envelope.broadcast) {
    header["b"] = true;
  } else {
    header["u"] = redis_escape(envelope.user);
    // Only a marker: it goes on the broadcast channel, and a reader that does not know "e"
    // still takes it for the user's message it is.
    if (envelope.every_instance)
      header["e"] = true;
    // Rounded up: a connection attached in the same millisecond counts as attached before.
    if (envelope.every_instance && envelope.replayed_sent_at)
      header["at"] = std::chrono::ceil<std::chrono::milliseconds>(
                         envelope.replayed_sent_at->time_since_epoch())
                         .count();
    if (envelope.every_instance && !origin.empty())
      header["o"] = origin;
  }
  std::string out = header.dump();
  out.push_back('\n');
  out += e.data();
  return out;
}

std::optional<BusMessage> decode_bus_message_with_origin(std::string_view message) {
  const auto newline = message.find('\n');
  if (newline == std::string_view::npos)
    return std::nullopt;
  const auto header = nlohmann::json::parse(message.substr(0, newline), nullptr, false);
  if (header.is_discarded() || !header.is_object())
    return std::nullopt;
  const auto t = header.find("t");
  if (t == header.end() || !t->is_string() || t->get_ref<const std::string&>().empty())
    return std::nullopt;
  std::string id;
  if (auto i = header.find("i"); i != header.end()) {
    if (!i->is_string())
      return std::nullopt;
    id = i->get<std::string>();
  }
  std::uint64_t seq = 0;
  if (auto s = header.find("s"); s != header.end()) {
    if (!s->is_string())
      return std::nullopt;
    auto parsed = parse_sequence(s->get_ref<const std::string&>());
    if (!parsed)
      return std::nullopt;
    seq = *parsed;
  }
  Envelope envelope;
  if (auto b = header.find("b"); b != header.end() && b->is_boolean() && b->get<bool>()) {
    envelope.broadcast = true;
  } else {
    auto u = header.find("u");
    if (u == header.end() || !u->is_string())
      return std::nullopt;
    auto user = redis_unescape(u->get_ref<const std::string&>());
    if (!user || user->empty())
      return std::nullopt;
    envelope.user = std::move(*user);
    if (auto e = header.find("e"); e != header.end() && e->is_boolean())
      envelope.every_instance = e->get<bool>();
    if (auto at = header.find("at"); at != header.end()) {
      if (!at->is_number_unsigned() || !envelope.every_instance)
        return std::nullopt;
      const auto ms = at->get<std::uint64_t>();
      envelope.replayed_sent_at =
          ms <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
              ? time_at_unix_ms(static_cast<std::int64_t>(ms))
              : std::nullopt;
      if (!envelope.replayed_sent_at)
        return std::nullopt;
    }
  }
  std::string origin;
  if (auto o = header.find("o"); o != header.end()) {
    if (!o->is_string() || !envelope.every_instance)
      return std::nullopt;
    origin = o->get<std::string>();
  }
  try {
    envelope.event = Event::message(t->get<std::string>(), std::move(id),
                                    std::string(message.substr(newline + 1)), seq);
  } catch (const std::invalid_argument&) {
    return std::nullopt;  // a type or id an event cannot have (a line break, say)
  }
  return BusMessage{std::move(envelope), std::move(origin)};
}

}  // namespace redis_detail

std::string encode_bus_message(const Envelope& envelope) {
  return redis_detail::encode_bus_message(envelope, {});
}

std::optional<Envelope> decode_bus_message(std::string_view message) {
  auto decoded = redis_detail::decode_bus_message_with_origin(message);
  if (!decoded)
    return std::nullopt;
  return std::move(decoded->envelope);
}

}  // namespace notify
