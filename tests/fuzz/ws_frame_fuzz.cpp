// libFuzzer target: client bytes into a ws::Decoder.
//
// The first input byte chooses the setup, the rest is the byte stream:
//   bit 0     permessage-deflate negotiated (an Inflater is given)
//   bit 1     a small message limit (200 bytes) instead of 1 MiB
//   bit 2     client_no_context_takeover
//   bits 3-7  where a second decoder splits the stream (0/31 .. 31/31 of its length)
// Checked: no crash or sanitizer report; both decoders agree; every message obeys the
// limit, text and close reasons are UTF-8, control payloads fit in 125 bytes, close codes
// are allowed; messages survive a compress/inflate round trip; a failed decoder refuses
// more bytes.
#include <notify/utf8.hpp>
#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>

#include "invariant.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace {

using namespace notify::ws;

using fuzz::check;
using fuzz::violated;

struct Run {
  std::vector<Message> messages;
  std::optional<CloseCode> error;
};

Run run(std::string_view stream, std::size_t split, const DecoderLimits& limits,
        const std::optional<DeflateParams>& deflate) {
  std::optional<Inflater> inflater;
  if (deflate)
    inflater.emplace(*deflate);
  Decoder decoder(limits, inflater ? &*inflater : nullptr);
  Run r;
  r.error = decoder.feed(stream.substr(0, split), r.messages);
  if (!r.error)
    r.error = decoder.feed(stream.substr(split), r.messages);
  if (r.error) {
    bool threw = false;
    try {
      decoder.feed("x", r.messages);
    } catch (const std::logic_error&) {
      threw = true;
    }
    check(threw, "a failed decoder accepted more bytes");
  }
  return r;
}

void check_message(const Message& m, const DecoderLimits& limits) {
  switch (m.opcode) {
    case Opcode::text:
      check(notify::is_valid_utf8(m.payload), "text message is not UTF-8");
      [[fallthrough]];
    case Opcode::binary:
      check(m.payload.size() <= limits.max_message_bytes, "message over the limit");
      check(m.close_code == 0, "data message with a close code");
      break;
    case Opcode::ping:
    case Opcode::pong:
      check(m.payload.size() <= max_control_payload, "control payload over 125 bytes");
      break;
    case Opcode::close:
      check(m.payload.size() <= max_control_payload - 2, "close reason over 123 bytes");
      check(notify::is_valid_utf8(m.payload), "close reason is not UTF-8");
      check(m.close_code == 0 ? m.payload.empty() : is_valid_close_code(m.close_code),
            "close code not allowed");
      break;
    default:
      violated("message with a frame-level opcode");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  const std::uint8_t setup = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  DecoderLimits limits;
  if ((setup & 0x02) != 0)
    limits.max_message_bytes = 200;
  std::optional<DeflateParams> deflate;
  if ((setup & 0x01) != 0) {
    deflate.emplace();
    deflate->client_no_context_takeover = (setup & 0x04) != 0;
  }
  const std::size_t split = stream.size() * (setup >> 3) / 31;

  const Run whole = run(stream, stream.size(), limits, deflate);
  const Run parts = run(stream, split, limits, deflate);
  check(whole.error == parts.error, "split and whole streams end differently");
  check(whole.messages.size() == parts.messages.size(), "split and whole: message counts");
  for (std::size_t i = 0; i < whole.messages.size(); ++i) {
    const auto& a = whole.messages[i];
    const auto& b = parts.messages[i];
    check(a.opcode == b.opcode && a.payload == b.payload && a.close_code == b.close_code,
          "split and whole: messages differ");
    check_message(a, limits);
  }

  // What the decoder delivers, a server can send back, compressed or not.
  static Deflater deflater(1);
  for (const auto& m : whole.messages) {
    std::string frame;
    if (m.opcode == Opcode::ping || m.opcode == Opcode::pong) {
      append_frame(frame, Opcode::pong, m.payload);
    } else if (m.opcode == Opcode::close) {
      frame = close_frame(
          m.close_code == 0 ? CloseCode::no_status : static_cast<CloseCode>(m.close_code),
          m.payload);
    } else {
      const auto compressed = deflater.compress_message(m.payload);
      Inflater inflater;
      std::string back;
      check(inflater.inflate(compressed, back, m.payload.size()) == Inflater::Status::ok &&
                inflater.finish_message(back, m.payload.size()) == Inflater::Status::ok &&
                back == m.payload,
            "compress/inflate round trip");
    }
  }
  return 0;
}
