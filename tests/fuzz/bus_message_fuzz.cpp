// libFuzzer target: a message read from a RedisBus channel (anyone who may publish on Redis
// can write one), into decode_bus_message().
//
// Checked: no crash or sanitizer report (a huge "at" or "s" included); what decodes is an
// envelope the bus can act on (an event with a type; a user unless broadcast; "at" only for
// every instance); and encode_bus_message() writes it so that it decodes to the same envelope.
#include <notify/redis_bus.hpp>

#include "invariant.hpp"

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
  const auto envelope = notify::decode_bus_message(message);
  if (!envelope)
    return 0;
  check(envelope->event != nullptr, "decoded without an event");
  check(!envelope->event->type().empty(), "decoded without a type");
  check(envelope->broadcast == envelope->user.empty(), "a user's message without a user");
  check(!envelope->replayed_sent_at || envelope->every_instance, "\"at\" on another message");
  const auto again = notify::decode_bus_message(notify::encode_bus_message(*envelope));
  check(again.has_value(), "an encoded envelope does not decode");
  check(same(*envelope, *again), "an encoded envelope decodes to another");
  return 0;
}
