// The WebSocket framing of RFC 6455 (section 5), server side: encoding the frames a server
// sends (never masked) and decoding, incrementally, the frames a client sends (always masked).
//
// No sockets here: bytes in, messages out. The frame functions are pure and safe from any
// thread; a Decoder belongs to one connection and is not shared.
#pragma once

#include <notify/export.hpp>
#include <notify/utf8.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace notify::ws {

class Inflater;

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// The close codes this library sends or fails a connection with (RFC 6455 section 7.4.1).
// A received close frame may carry any code is_valid_close_code() accepts.
enum class CloseCode : std::uint16_t {
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  unsupported_data = 1003,
  no_status = 1005,  // never on the wire: close_frame(no_status) sends a close without a code
  invalid_payload = 1007,
  policy_violation = 1008,
  message_too_big = 1009,
  internal_error = 1011,
  try_again_later = 1013,
  // notify's own (4000-4999 are for applications): the host ended the session; reconnect
  // only after authenticating again. The same number as graphql-ws's "Unauthorized".
  session_ended = 4401,
};

inline constexpr std::size_t max_control_payload = 125;

constexpr bool is_control(Opcode op) noexcept {
  return (static_cast<unsigned>(op) & 0x8) != 0;
}

// Whether `code` may appear in a close frame: 1000-1003, 1007-1014 (the IANA registry), and
// 3000-4999 (libraries and applications). 1004-1006 and 1015 are reserved for local use,
// 1016-2999 are unassigned, and so is everything below 1000 or above 4999.
NOTIFY_EXPORT bool is_valid_close_code(std::uint16_t code) noexcept;

// Appends one server frame: FIN, RSV1 (a permessage-deflate compressed message's first
// frame), the opcode, the shortest length encoding, no mask, the payload.
// Throws std::invalid_argument for a reserved opcode, a control frame that is fragmented,
// compressed or longer than 125 bytes, and RSV1 on a continuation frame.
NOTIFY_EXPORT void append_frame(std::string& out, Opcode op, std::string_view payload,
                                bool fin = true, bool rsv1 = false);

// The size of the header append_frame() writes before `payload_size` bytes of payload.
NOTIFY_EXPORT std::size_t frame_header_size(std::size_t payload_size) noexcept;

NOTIFY_EXPORT std::string text_frame(std::string_view payload);
NOTIFY_EXPORT std::string binary_frame(std::string_view payload);

// A close frame with `code` and `reason`, the reason cut to fit the 125 bytes of a control
// frame (123 after the code) on a character boundary. close_frame(CloseCode::no_status) is a
// close frame without a code. Throws std::invalid_argument when `code` may not be sent (see
// is_valid_close_code), when `reason` is not valid UTF-8, or when a reason comes with
// no_status.
NOTIFY_EXPORT std::string close_frame(CloseCode code, std::string_view reason = {});

// Throw std::invalid_argument when `payload` is longer than 125 bytes.
NOTIFY_EXPORT std::string ping_frame(std::string_view payload = {});
NOTIFY_EXPORT std::string pong_frame(std::string_view payload);

struct DecoderLimits {
  // The largest data message accepted, in bytes: checked against every frame's declared
  // length before its payload is read (the sum of a fragmented message's frames), and for a
  // compressed message against both the compressed and the inflated size.
  std::size_t max_message_bytes = std::size_t{1} << 20;
};

struct Message {
  Opcode opcode = Opcode::text;  // text, binary, close, ping or pong
  // The message (text: valid UTF-8; inflated when it was compressed); for a close, the
  // reason (valid UTF-8) without the code.
  std::string payload;
  std::uint16_t close_code = 0;  // a close's code; 0 when its frame carried none
};

// Decodes the frames of one client connection. Bytes may arrive split anywhere; every rule
// of RFC 6455 the server must enforce is checked as soon as the bytes decide it, and a
// violation yields the close code to fail the connection with:
//   protocol_error (1002)   unmasked frame, RSV2/RSV3, RSV1 outside the first frame of a
//                           data message or without permessage-deflate, a reserved
//                           opcode, a continuation with no message open or a new data
//                           message while one is open, a fragmented control frame or one
//                           over 125 bytes, a 64-bit length with its top bit set, a close
//                           payload of 1 byte or with a code not allowed on the wire
//   invalid_payload (1007)  text (also a close reason) that is not UTF-8 — found on the
//                           first offending byte, not at the end of the message — and
//                           compressed data that does not inflate
//   message_too_big (1009)  over max_message_bytes, declared or inflated (inflation stops
//                           at the limit)
//   internal_error (1011)   zlib could not allocate
// Memory grows only with bytes actually received (or inflated within the limit), never
// with a declared length.
class NOTIFY_EXPORT Decoder {
 public:
  // `inflater` (not owned, must outlive the decoder) is set when permessage-deflate was
  // negotiated; without one, a compressed frame is a protocol error.
  explicit Decoder(DecoderLimits limits = {}, Inflater* inflater = nullptr);

  // Consumes `bytes` and appends to `out` every message they complete: data messages once
  // whole, control messages (ping, pong, close) as soon as their frame is, also between the
  // fragments of a data message. Replying to a ping is the caller's (pong_frame with the
  // same payload).
  //
  // Returns the close code to fail the connection with on a protocol violation; messages
  // completed before it are still appended. After a violation the decoder must not be fed
  // again (std::logic_error). After a close message it ignores whatever follows.
  std::optional<CloseCode> feed(std::string_view bytes, std::vector<Message>& out);

  // True once a close message was delivered.
  bool closed() const noexcept { return state_ == State::closed; }

  // True between frames with no data message open: the decoder holds nothing that a new
  // decoder with the same limits would not.
  bool between_messages() const noexcept {
    return state_ == State::header && header_size_ == 0 && !in_message_;
  }

 private:
  enum class State : std::uint8_t { header, payload, closed, failed };

  std::optional<CloseCode> fail(CloseCode code);
  std::optional<CloseCode> header_byte(std::uint8_t byte);
  std::optional<CloseCode> declared_length();
  void start_payload();
  std::optional<CloseCode> payload_bytes(std::string_view bytes);
  std::optional<CloseCode> end_frame(std::vector<Message>& out);
  std::optional<CloseCode> end_control_frame(std::vector<Message>& out);
  std::optional<CloseCode> inflate(std::string_view compressed, bool last);
  void unmask(char* data, std::size_t size) noexcept;

  DecoderLimits limits_;
  Inflater* inflater_;
  State state_ = State::header;

  // The frame being read.
  std::array<std::uint8_t, 14> header_{};  // 2 + up to 8 length bytes + 4 mask bytes
  std::size_t header_size_ = 0;            // bytes of header_ received
  std::size_t header_needed_ = 2;          // bytes of header_ the frame has
  Opcode opcode_ = Opcode::continuation;
  bool fin_ = false;
  std::uint64_t remaining_ = 0;  // payload bytes of the frame still to come
  std::size_t mask_offset_ = 0;  // position in the mask of the next payload byte
  std::string control_;          // a control frame's payload, at most 125 bytes

  // The data message being assembled (fragments, possibly compressed).
  bool in_message_ = false;
  Opcode message_opcode_ = Opcode::text;
  bool compressed_ = false;
  std::size_t wire_bytes_ = 0;  // payload bytes received for it, as sent (compressed)
  std::string message_;
  Utf8Validator utf8_;
};

}  // namespace notify::ws
