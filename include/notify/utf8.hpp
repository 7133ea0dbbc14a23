// UTF-8 validation (RFC 3629, Unicode "well-formed UTF-8 byte sequences"): no overlong
// forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
//
// Thread safety: is_valid_utf8 is a pure function; a Utf8Validator is a plain value, one per
// stream of bytes, not shared.
#pragma once

#include <notify/export.hpp>

#include <cstdint>
#include <string_view>

namespace notify {

// Validates a byte stream that arrives in pieces, split anywhere (also inside a character).
// It fails on the first byte that no valid continuation could follow: "\xE0\x80" fails at
// its second byte (an overlong form), "\xED\xA0" at its second (a surrogate), "\xF4\x90" at
// its second (above U+10FFFF), without waiting for the rest of the character.
class NOTIFY_EXPORT Utf8Validator {
 public:
  // Consumes `bytes`. False once the bytes seen so far cannot begin a valid UTF-8 text;
  // from then on it stays false.
  bool feed(std::string_view bytes) noexcept;

  // True when no byte was invalid and the bytes seen so far end on a character boundary.
  bool complete() const noexcept { return !failed_ && pending_ == 0; }

  bool failed() const noexcept { return failed_; }

  void reset() noexcept { *this = Utf8Validator(); }

 private:
  std::uint8_t pending_ = 0;  // continuation bytes the current character still needs
  std::uint8_t low_ = 0x80;   // the range of the next continuation byte
  std::uint8_t high_ = 0xBF;
  bool failed_ = false;
};

NOTIFY_EXPORT bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace notify
