// libFuzzer target: a message read from a RedisBus channel (anyone who may publish on Redis
// can write one), into decode_bus_message() (the bus's form, with the sender's origin).
//
// Checked: no crash or sanitizer report (a huge "at" or "s" included); what decodes is an
// envelope the bus can act on (an event with a type; a user unless broadcast; "at" and an
// origin only for every instance); encode_bus_message() writes it so that it decodes to the
// same envelope and origin; the public decode_bus_message() agrees.
#include <notify/redis_bus.hpp>

#include "invariant.hpp"
#include "redis/bus_message.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using fuzz::check;

bool same(const notify::Envelope& a, const notify::Envelope& b) {
  return a.user == b.user && a.broadcast == b.broadcast && a.every_instance == b.every_instance &&
         a.replayed_sent_at == b.replayed_sent_at && a.event->type() == b.event->type() &&
         a.event->id() == b.event->id() && a.event->seq() == b.event->seq() &&
         a.event->data() == b.event->data();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view message(reinterpret_cast<const char*>(data), size);
  const auto decoded = notify::redis_detail::decode_bus_message_with_origin(message);
  const auto plain = notify::decode_bus_message(message);
  check(decoded.has_value() == plain.has_value(), "the two decoders disagree");
  if (!decoded)
    return 0;
  check(same(decoded->envelope, *plain), "the two decoders disagree on the envelope");
  const auto* envelope = &decoded->envelope;
  check(envelope->event != nullptr, "decoded without an event");
  check(!envelope->event->type().empty(), "decoded without a type");
  check(envelope->broadcast == envelope->user.empty(), "a user's message without a user");
  check(!envelope->replayed_sent_at || envelope->every_instance, "\"at\" on another message");
  check(decoded->origin.empty() || envelope->every_instance, "an origin on another message");
  const auto again = notify::redis_detail::decode_bus_message_with_origin(
      notify::redis_detail::encode_bus_message(*envelope, decoded->origin));
  check(again.has_value(), "an encoded envelope does not decode");
  check(same(*envelope, again->envelope), "an encoded envelope decodes to another");
  check(again->origin == decoded->origin, "an encoded origin decodes to another");
  return 0;
}
