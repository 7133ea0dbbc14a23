// permessage-deflate (RFC 7692): negotiating it, compressing the messages a server sends and
// inflating the ones a client sends (zlib, raw DEFLATE).
//
// This server always answers with server_no_context_takeover: every outgoing message is
// compressed on its own, so one compressed frame is the same bytes for every connection that
// negotiated the extension and can be shared by all of them in a fan-out. For the same
// reason it accepts server_max_window_bits only when it is 15 (a smaller window would make
// the frame connection-specific); a client that asks for less gets no compression from that
// offer and may have a next one.
//
// Thread safety: negotiate_deflate and deflate_response are pure functions. A Deflater or an
// Inflater is used by one thread at a time; an Inflater belongs to one connection.
#pragma once

#include <notify/export.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace notify::ws {

// Below this size a message is cheaper to send as it is: the frame would barely shrink,
// and compressing still costs a deflate stream's work.
inline constexpr std::size_t deflate_threshold = 256;

// What was agreed with one client.
struct DeflateParams {
  // The client resets its compressor after each message, so the inflater does too.
  bool client_no_context_takeover = false;
  // server_max_window_bits in the answer (only 15 is accepted); 0: not in the answer.
  std::uint8_t server_max_window_bits = 0;
};

// Picks the first acceptable permessage-deflate offer of a Sec-WebSocket-Extensions value
// (repeated headers: their values joined with ","). An offer with an unknown, duplicated or
// malformed parameter is declined, not an error: the next offer is tried.
NOTIFY_EXPORT std::optional<DeflateParams> negotiate_deflate(std::string_view extensions);

// The Sec-WebSocket-Extensions value that accepts `params`, e.g.
// "permessage-deflate; server_no_context_takeover".
NOTIFY_EXPORT std::string deflate_response(const DeflateParams& params);

// Compresses whole messages, each on its own (no context is kept between them).
class NOTIFY_EXPORT Deflater {
 public:
  // `level` is zlib's, 1 (fastest) to 9 (smallest). Throws std::bad_alloc when zlib cannot
  // allocate its state.
  explicit Deflater(int level = 6);
  ~Deflater();
  Deflater(Deflater&&) noexcept;
  Deflater& operator=(Deflater&&) noexcept;

  // The payload of the compressed message: DEFLATE ending in a sync flush, without its
  // final 00 00 ff ff (RFC 7692 section 7.2.1).
  std::string compress_message(std::string_view payload);

 private:
  struct Stream;
  std::unique_ptr<Stream> stream_;
};

// Inflates the compressed messages of one connection, keeping the LZ77 window from one
// message to the next unless the client promised not to need it.
class NOTIFY_EXPORT Inflater {
 public:
  enum class Status : std::uint8_t {
    ok,
    too_big,  // the output would pass `max_size`: inflating stopped there
    corrupt,  // not valid DEFLATE data
    error,    // zlib could not allocate
  };

  // Throws std::bad_alloc when zlib cannot allocate its state.
  explicit Inflater(const DeflateParams& params = {});
  ~Inflater();
  Inflater(Inflater&&) noexcept;
  Inflater& operator=(Inflater&&) noexcept;

  // Inflates the next piece of the current message's compressed payload (pieces may split
  // it anywhere) and appends the output to `out`, which never grows beyond `max_size` bytes
  // in all: too_big then. After any status but ok, reset() before inflating again.
  Status inflate(std::string_view compressed, std::string& out, std::size_t max_size);

  // Ends the current message: inflates the 00 00 ff ff its sender removed. corrupt when
  // the message's data stops inside a DEFLATE block.
  Status finish_message(std::string& out, std::size_t max_size);

  // Forgets the window and any partial message.
  void reset() noexcept;

 private:
  struct Stream;
  std::unique_ptr<Stream> stream_;
};

// One text frame, RSV1 set, whose payload is compress_message(payload).
NOTIFY_EXPORT std::string compressed_text_frame(std::string_view payload, Deflater& deflater);

// The same with a Deflater of the calling thread's own (made on first use).
NOTIFY_EXPORT std::string compressed_text_frame(std::string_view payload);

}  // namespace notify::ws
