#include "ws_test_support.hpp"

#include <notify/utf8.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

using notify::is_valid_utf8;
using notify::Utf8Validator;
using test::ws::hex;

namespace {

// An independent reference: decodes each code point, then applies the rules.
bool reference_valid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<std::uint8_t>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      n = 1;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      n = 2;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      n = 3;
      cp = b & 0x07;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n)
      return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto c = static_cast<std::uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    constexpr std::uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
    if (cp < smallest[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += 1 + n;
  }
  return true;
}

// The continuation bytes a lead byte announces; -1 when it leads nothing.
int announced(std::uint8_t b) {
  if ((b & 0xE0) == 0xC0)
    return 1;
  if ((b & 0xF0) == 0xE0)
    return 2;
  if ((b & 0xF8) == 0xF0)
    return 3;
  return -1;
}

// The index of the byte on which a byte-at-a-time validator fails; -1 if none does.
std::ptrdiff_t failing_byte(std::string_view s) {
  Utf8Validator v;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!v.feed(s.substr(i, 1)))
      return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

}  // namespace

TEST_CASE("utf8: table of valid, invalid and truncated texts, failing on the first bad byte") {
  struct Row {
    const char* name;
    std::string bytes;
    bool valid;
    std::ptrdiff_t fails_at;  // -1: no byte fails (valid, or a truncated character)
  };
  const Row rows[] = {
      {"empty", "", true, -1},
      {"ascii", "hello, world", true, -1},
      {"NUL", std::string("a\0b", 3), true, -1},
      {"kosme (Autobahn 6.2.1)", hex("ce ba e1 bd b9 cf 83 ce bc ce b5"), true, -1},
      {"U+007F", hex("7f"), true, -1},
      {"U+0080", hex("c2 80"), true, -1},
      {"U+07FF", hex("df bf"), true, -1},
      {"U+0800", hex("e0 a0 80"), true, -1},
      {"U+D7FF", hex("ed 9f bf"), true, -1},
      {"U+E000", hex("ee 80 80"), true, -1},
      {"U+FFFF", hex("ef bf bf"), true, -1},
      {"U+10000", hex("f0 90 80 80"), true, -1},
      {"U+10FFFF", hex("f4 8f bf bf"), true, -1},
      {"lone continuation 80", hex("80"), false, 0},
      {"lone continuation bf", hex("41 bf"), false, 1},
      {"overlong C0 80", hex("c0 80"), false, 0},
      {"overlong C1 BF", hex("c1 bf"), false, 0},
      {"overlong E0 80 80, fails at byte 2", hex("e0 80 80"), false, 1},
      {"overlong E0 9F BF", hex("e0 9f bf"), false, 1},
      {"overlong F0 80 80 80", hex("f0 80 80 80"), false, 1},
      {"overlong F0 8F BF BF", hex("f0 8f bf bf"), false, 1},
      {"surrogate U+D800", hex("ed a0 80"), false, 1},
      {"surrogate U+DFFF", hex("ed bf bf"), false, 1},
      {"surrogate pair", hex("ed a0 80 ed b0 80"), false, 1},
      {"U+110000", hex("f4 90 80 80"), false, 1},
      {"F5", hex("f5 80 80 80"), false, 0},
      {"F8", hex("f8 88 80 80 80"), false, 0},
      {"FE FF", hex("fe ff"), false, 0},
      {"FF", hex("41 42 ff"), false, 2},
      {"2-byte, ASCII instead of continuation", hex("c2 41"), false, 1},
      {"3-byte, ASCII as third", hex("e0 a0 41"), false, 2},
      {"4-byte, ASCII as fourth", hex("f0 90 80 41"), false, 3},
      {"truncated 2-byte", hex("c2"), false, -1},
      {"truncated 3-byte", hex("e2 82"), false, -1},
      {"truncated 4-byte", hex("f0 9f 94"), false, -1},
      {"kosme then a surrogate (Autobahn 6.3.1)",
       hex("ce ba e1 bd b9 cf 83 ce bc ce b5 ed a0 80 65 64 69 74 65 64"), false, 12},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    CHECK(is_valid_utf8(row.bytes) == row.valid);
    CHECK(reference_valid(row.bytes) == row.valid);
    CHECK(failing_byte(row.bytes) == row.fails_at);
    Utf8Validator whole;
    CHECK(whole.feed(row.bytes) == (row.fails_at < 0));
    CHECK(whole.complete() == row.valid);
    CHECK(whole.failed() == (row.fails_at >= 0));
  }
}

TEST_CASE("utf8: a failed validator stays failed; reset starts over") {
  Utf8Validator v;
  CHECK_FALSE(v.feed(hex("ff")));
  CHECK_FALSE(v.feed("abc"));
  CHECK_FALSE(v.complete());
  v.reset();
  CHECK(v.feed("abc"));
  CHECK(v.complete());
}

TEST_CASE("utf8: the ASCII fast path finds a bad byte at every offset") {
  for (std::size_t pos = 0; pos < 40; ++pos) {
    std::string s(40, 'a');
    s[pos] = '\xff';
    CAPTURE(pos);
    Utf8Validator v;
    CHECK_FALSE(v.feed(s));
    CHECK(failing_byte(s) == static_cast<std::ptrdiff_t>(pos));
    // A valid 4-byte character at the same place, split at every byte boundary.
    std::string ok(40, 'a');
    ok.replace(pos, 1, hex("f0 9f 94 94"));
    for (std::size_t cut = 0; cut <= ok.size(); ++cut) {
      Utf8Validator split;
      CHECK(split.feed(std::string_view(ok).substr(0, cut)));
      CHECK(split.feed(std::string_view(ok).substr(cut)));
      CHECK(split.complete());
    }
  }
}

TEST_CASE("utf8: agrees with the reference on every 1-, 2- and 3-byte string") {
  std::size_t mismatches = 0;
  std::string s(1, '\0');
  for (int a = 0; a < 256; ++a) {
    s[0] = static_cast<char>(a);
    if (is_valid_utf8(s) != reference_valid(s))
      ++mismatches;
  }
  s.resize(2);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      s[0] = static_cast<char>(a);
      s[1] = static_cast<char>(b);
      if (is_valid_utf8(s) != reference_valid(s))
        ++mismatches;
    }
  }
  s.resize(3);
  for (int a = 0x80; a < 256; ++a) {  // an ASCII first byte leaves a 2-byte case
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        s[0] = static_cast<char>(a);
        s[1] = static_cast<char>(b);
        s[2] = static_cast<char>(c);
        if (is_valid_utf8(s) != reference_valid(s))
          ++mismatches;
      }
    }
  }
  s.resize(4);
  const int tails[] = {0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xff};
  for (int a = 0xf0; a < 0x100; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (const int c : tails) {
        for (const int d : tails) {
          s[0] = static_cast<char>(a);
          s[1] = static_cast<char>(b);
          s[2] = static_cast<char>(c);
          s[3] = static_cast<char>(d);
          if (is_valid_utf8(s) != reference_valid(s))
            ++mismatches;
        }
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("utf8: fails on the second byte exactly when no continuation could make it valid") {
  // Every continuation byte accepts 80..BF after the second, so 80s complete a prefix
  // whenever anything does.
  std::size_t mismatches = 0;
  for (int a = 0x80; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string prefix{static_cast<char>(a), static_cast<char>(b)};
      const int n = announced(static_cast<std::uint8_t>(a));
      const bool viable = n >= 1 && reference_valid(prefix + std::string(n - 1, '\x80'));
      Utf8Validator v;
      if (v.feed(prefix) != viable)
        ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}
