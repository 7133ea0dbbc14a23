// libFuzzer target: request targets into the demo's URL helpers (examples/demo/url.cpp):
// percent_decode(), split_path(), QueryParams::parse() and find().
//
// The first input byte chooses how the fuzzer encodes, the rest is the text:
//   bit 0     hex digits of its escapes in lower case (else upper case)
//   bit 1     it escapes every byte (else only those outside ALPHA / DIGIT / "-._~")
//   bit 2     it writes a space in a query as '+' (else as %20)
// The text is used as it is (a raw path, query or escaped string) and as material: its lines
// are path segments, and each line's part before its first '\t' a query name, the rest the
// value.
//
// Checked: no crash or sanitizer report; percent_decode() fails exactly when a '%' is not
// followed by two hex digits, otherwise it removes two bytes per '%', is the identity on
// text without '%' (and without '+' when plus_is_space), and with plus_is_space is the same
// as without on the text with every '+' made a space; escaping any bytes and decoding gives
// them back; split_path() of a raw path gives one segment per '/', each the decoding of
// its raw part, and of a path joined from escaped segments gives those segments;
// QueryParams::parse() fails exactly when percent_decode() fails on the same text, and
// find() gives the first value of a name, both for the raw text and for a query built from
// escaped (name, value) pairs.
#include "invariant.hpp"
#include "url.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using fuzz::check;

struct Setup {
  bool lower_hex = false;
  bool escape_all = false;
  bool plus_for_space = false;
};

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Every '%' starts an escape of two hex digits.
bool escapes_are_valid(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%')
      continue;
    if (text.size() - i < 3 || !is_hex(text[i + 1]) || !is_hex(text[i + 2]))
      return false;
  }
  return true;
}

std::string escape(std::string_view bytes, const Setup& setup, bool in_query) {
  const char* digits = setup.lower_hex ? "0123456789abcdef" : "0123456789ABCDEF";
  std::string out;
  for (const char c : bytes) {
    if (in_query && setup.plus_for_space && c == ' ') {
      out += '+';
    } else if (!setup.escape_all && is_unreserved(c)) {
      out += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 0x0f];
    }
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  for (std::size_t at; (at = text.find(separator)) != std::string_view::npos;
       text.remove_prefix(at + 1))
    out.push_back(text.substr(0, at));
  out.push_back(text);
  return out;
}

void check_decode(std::string_view text) {
  const auto plain = demo::percent_decode(text, false);
  const auto plus = demo::percent_decode(text, true);
  const bool valid = escapes_are_valid(text);
  check(plain.has_value() == valid, "percent_decode fails other than on a bad escape");
  check(plus.has_value() == valid, "percent_decode (plus) fails other than on a bad escape");
  if (!valid)
    return;
  const auto percents = static_cast<std::size_t>(std::count(text.begin(), text.end(), '%'));
  check(plain->size() == text.size() - 2 * percents, "decoded size");
  check(plus->size() == plain->size(), "decoded size (plus)");
  if (percents == 0)
    check(*plain == text, "not the identity without '%'");
  if (percents == 0 && text.find('+') == std::string_view::npos)
    check(*plus == text, "not the identity without '%' and '+'");
  std::string spaced(text);
  std::replace(spaced.begin(), spaced.end(), '+', ' ');
  check(demo::percent_decode(spaced, false) == plus, "'+' is not a space with plus_is_space");
}

void check_split_path(std::string_view text, const Setup& setup) {
  const auto segments = demo::split_path(text);
  if (text.empty() || text.front() != '/') {
    check(!segments, "split_path of a path without a leading '/'");
  } else {
    const auto raw = split(text.substr(1), '/');
    check(segments.has_value() == escapes_are_valid(text), "split_path fails otherwise");
    if (segments) {
      check(segments->size() == raw.size(), "one segment per '/'");
      for (std::size_t i = 0; i < raw.size(); ++i)
        check(demo::percent_decode(raw[i], false) == (*segments)[i], "segment decoding");
    }
  }

  // Segments made of any bytes ('/' included) survive escaping and joining.
  const auto lines = split(text, '\n');
  std::string path;
  for (const auto line : lines) {
    path += '/';
    path += escape(line, setup, false);
  }
  const auto back = demo::split_path(path);
  check(back.has_value() && back->size() == lines.size() &&
            std::equal(lines.begin(), lines.end(), back->begin()),
        "split_path of escaped segments");
}

using Items = std::vector<std::pair<std::string, std::string>>;

void check_find(const demo::QueryParams& params, const Items& items, std::string_view name) {
  const std::string* expected = nullptr;
  for (const auto& item : items) {
    if (item.first == name) {
      expected = &item.second;
      break;
    }
  }
  const std::string* found = params.find(name);
  check((found == nullptr) == (expected == nullptr), "find: found or not");
  if (found)
    check(*found == *expected, "find: not the first value of the name");
}

void check_query(std::string_view text, const Setup& setup) {
  // The raw text as a query.
  const auto params = demo::QueryParams::parse(text);
  check(params.has_value() == escapes_are_valid(text), "QueryParams::parse fails otherwise");
  if (params) {
    Items items;
    for (const auto pair : split(text, '&')) {
      if (pair.empty())
        continue;
      const std::size_t eq = pair.find('=');
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
      items.emplace_back(*demo::percent_decode(pair.substr(0, eq), true),
                         *demo::percent_decode(value, true));
    }
    for (const auto& item : items)
      check_find(*params, items, item.first);
    check_find(*params, items, text);
    check_find(*params, items, "");
  }

  // A query built from escaped (name, value) pairs, one per line.
  Items items;
  std::string query;
  for (const auto line : split(text, '\n')) {
    const std::size_t tab = line.find('\t');
    const std::string_view name = line.substr(0, tab);
    const std::string_view value =
        tab == std::string_view::npos ? std::string_view() : line.substr(tab + 1);
    if (!query.empty())
      query += '&';
    query += escape(name, setup, true);
    query += '=';
    query += escape(value, setup, true);
    items.emplace_back(name, value);
  }
  const auto built = demo::QueryParams::parse(query);
  check(built.has_value(), "QueryParams::parse of escaped pairs failed");
  for (const auto& item : items)
    check_find(*built, items, item.first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  Setup setup;
  setup.lower_hex = (data[0] & 0x01) != 0;
  setup.escape_all = (data[0] & 0x02) != 0;
  setup.plus_for_space = (data[0] & 0x04) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  check_decode(text);
  const std::string escaped = escape(text, setup, false);
  check(demo::percent_decode(escaped, false) == text, "escape then decode");
  check(demo::percent_decode(escaped, true) == text, "escape then decode (plus)");
  check_split_path(text, setup);
  check_query(text, setup);
  return 0;
}
