// libFuzzer target: a client's opening handshake into ws::accept_handshake().
//
// The first input byte chooses the options, the rest is the request:
//   bit 0     origin_allowed is set
//   bit 1     ... and accepts every origin (else only https://example.com)
//   bit 2     select_subprotocol is set
//   bit 3     ... and declines (returns "") instead of taking the first offered
//   bit 4     permessage_deflate is off
// The request is split into lines on '\n' (one trailing '\r' of a line is dropped, as an
// HTTP parser would): the first line's first word is the method, every other line a header
// "name:value" split at its first ':' (no ':': the whole line is a name with an empty value).
// A one-character name stands for a header of the handshake (short_names: '0' Upgrade, '1'
// Connection, .. '7' Sec-WebSocket-Protocol), so that mutations reach them often. Seeds:
// make_ws_handshake_corpus.py.
//
// Checked: no crash or sanitizer report; the status is 101, 400, 403, 405 or 426 and the
// error is set exactly when it is not 101; the response has one head terminator, a status
// line that matches the status and header lines with no control character but HT in them
// (no response splitting through an echoed client value); a 101 has an empty body, the
// Sec-WebSocket-Accept of the client's one key, the subprotocol the selector chose (a token
// the client offered) and the permessage-deflate answer of the negotiated parameters, whose
// server_max_window_bits is 15 or absent and which negotiate to themselves when offered
// back; an error has Connection: close, a Content-Length that matches its body and a body
// {"error": <the error>}; a request with its header names in another case is answered with
// the same bytes.
#include <notify/ws_deflate.hpp>
#include <notify/ws_handshake.hpp>

#include "invariant.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace notify::ws;

using fuzz::check;

constexpr std::array<const char*, 8> short_names = {
    "Upgrade", "Connection", "Sec-WebSocket-Key",        "Sec-WebSocket-Version",
    "Origin",  "Host",       "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
};

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

char upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i]))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// RFC 7230 tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

struct Input {
  std::string method;
  std::vector<std::pair<std::string, std::string>> headers;
};

Input read_request(std::string_view text) {
  Input in;
  bool first = true;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (first) {
      in.method = std::string(line.substr(0, line.find(' ')));
      first = false;
      continue;
    }
    if (line.empty())
      continue;
    const std::size_t colon = line.find(':');
    std::string name(line.substr(0, colon));
    if (name.size() == 1)
      name = short_names[static_cast<unsigned char>(name[0]) % short_names.size()];
    std::string value(colon == std::string_view::npos ? std::string_view{}
                                                      : line.substr(colon + 1));
    in.headers.emplace_back(std::move(name), std::move(value));
  }
  return in;
}

std::vector<std::string_view> values(const Input& in, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [key, value] : in.headers) {
    if (iequals(key, name))
      out.emplace_back(value);
  }
  return out;
}

// What a Sec-WebSocket-Protocol list could name: its comma-separated elements, trimmed.
std::vector<std::string_view> protocol_elements(const Input& in) {
  std::vector<std::string_view> out;
  for (std::string_view value : values(in, "Sec-WebSocket-Protocol")) {
    for (std::size_t comma; (comma = value.find(',')) != std::string_view::npos;
         value.remove_prefix(comma + 1))
      out.push_back(trim(value.substr(0, comma)));
    out.push_back(trim(value));
  }
  return out;
}

struct Response {
  std::string status_line;
  std::vector<std::string_view> headers;
  std::string_view body;

  bool has(std::string_view line) const {
    return std::find(headers.begin(), headers.end(), line) != headers.end();
  }
  // How many header lines start with `prefix`.
  int count(std::string_view prefix) const {
    return static_cast<int>(std::count_if(headers.begin(), headers.end(), [&](std::string_view h) {
      return h.substr(0, prefix.size()) == prefix;
    }));
  }
};

// Splits a response and checks its framing.
Response split_response(const std::string& response) {
  const std::size_t end = response.find("\r\n\r\n");
  check(end != std::string::npos, "no head terminator");
  check(response.find("\r\n\r\n", end + 1) == std::string::npos, "two head terminators");
  Response r;
  const std::string_view all(response);
  std::string_view head = all.substr(0, end + 2);
  r.body = all.substr(end + 4);
  bool first = true;
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    check(eol != std::string_view::npos, "head not made of CRLF lines");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    for (const char c : line) {
      const auto u = static_cast<unsigned char>(c);
      check(u == '\t' || (u >= 0x20 && u != 0x7f), "control character in a head line");
    }
    if (first) {
      r.status_line = std::string(line);
      first = false;
      continue;
    }
    const std::size_t colon = line.find(": ");
    check(colon != std::string_view::npos && is_token(line.substr(0, colon)),
          "head line is not a header");
    r.headers.push_back(line);
  }
  return r;
}

struct Setup {
  bool origin_callback = false;
  bool any_origin = false;
  bool selector = false;
  bool selector_declines = false;
  bool deflate = true;
  unsigned http_version = 11;
};

struct Seen {
  int origin_calls = 0;
  bool origin_answer = false;
  int selector_calls = 0;
  std::vector<std::string> offered;
};

HandshakeOptions make_options(const Setup& setup, Seen& seen) {
  HandshakeOptions options;
  if (setup.origin_callback) {
    options.origin_allowed = [&setup, &seen](std::string_view origin) {
      ++seen.origin_calls;
      seen.origin_answer = setup.any_origin || origin == "https://example.com";
      return seen.origin_answer;
    };
  }
  if (setup.selector) {
    options.select_subprotocol = [&setup, &seen](const std::vector<std::string>& offered) {
      ++seen.selector_calls;
      seen.offered = offered;
      return setup.selector_declines ? std::string() : offered.front();
    };
  }
  options.permessage_deflate = setup.deflate;
  return options;
}

void check_switch(const Input& in, const Setup& setup, const Seen& seen,
                  const HandshakeResult& result, const Response& r) {
  check(in.method == "GET", "101 for a method other than GET");
  check(setup.http_version >= 11, "101 for a request older than HTTP/1.1");
  check(values(in, "Host").size() == 1, "101 without exactly one Host");
  check(r.status_line == "HTTP/1.1 101 Switching Protocols", "101 status line");
  check(r.body.empty(), "101 with a body");
  check(r.has("Upgrade: websocket") && r.has("Connection: Upgrade"), "101 without Upgrade");

  const auto keys = values(in, "Sec-WebSocket-Key");
  check(keys.size() == 1, "101 without exactly one key");
  check(r.has("Sec-WebSocket-Accept: " + accept_key(trim(keys.front()))), "wrong accept key");
  check(r.count("Sec-WebSocket-Accept:") == 1, "101 with several accept keys");
  const auto versions = values(in, "Sec-WebSocket-Version");
  check(versions.size() == 1 && trim(versions.front()) == "13", "101 without version 13");

  check(!setup.origin_callback || (seen.origin_calls == 1 && seen.origin_answer),
        "101 without the origin's approval");

  // The subprotocol: one the client offered and the selector chose, a token.
  const auto elements = protocol_elements(in);
  if (result.subprotocol.empty()) {
    check(r.count("Sec-WebSocket-Protocol:") == 0, "Sec-WebSocket-Protocol without one chosen");
    check(!setup.selector || setup.selector_declines || seen.offered.empty(),
          "the selector's choice was dropped");
  } else {
    check(setup.selector && !setup.selector_declines, "a subprotocol nobody chose");
    check(seen.selector_calls == 1 && result.subprotocol == seen.offered.front(),
          "not the selector's subprotocol");
    check(is_token(result.subprotocol), "the subprotocol is not a token");
    check(std::find(elements.begin(), elements.end(), result.subprotocol) != elements.end(),
          "a subprotocol the client did not offer");
    check(r.has("Sec-WebSocket-Protocol: " + result.subprotocol) &&
              r.count("Sec-WebSocket-Protocol:") == 1,
          "Sec-WebSocket-Protocol does not name the subprotocol");
  }
  const bool any_token = std::any_of(elements.begin(), elements.end(), is_token);
  check(seen.selector_calls == (setup.selector && any_token ? 1 : 0),
        "the selector was not asked exactly when the client offered a subprotocol");
  for (const auto& offered : seen.offered) {
    check(is_token(offered), "the selector was offered something that is not a token");
    check(std::find(elements.begin(), elements.end(), offered) != elements.end(),
          "the selector was offered something the client did not offer");
  }

  if (result.deflate) {
    check(setup.deflate, "permessage-deflate negotiated while off");
    const DeflateParams& p = *result.deflate;
    check(p.server_max_window_bits == 0 || p.server_max_window_bits == 15,
          "server_max_window_bits other than 15");
    const std::string answer = deflate_response(p);
    check(r.has("Sec-WebSocket-Extensions: " + answer) && r.count("Sec-WebSocket-Extensions:") == 1,
          "Sec-WebSocket-Extensions does not answer the negotiated parameters");
    const auto again = negotiate_deflate(answer);
    check(again && again->client_no_context_takeover == p.client_no_context_takeover &&
              again->server_max_window_bits == p.server_max_window_bits,
          "the answer does not negotiate to the same parameters");
  } else {
    check(r.count("Sec-WebSocket-Extensions:") == 0, "Sec-WebSocket-Extensions without deflate");
  }
}

void check_error(const Input& in, const Setup& setup, const HandshakeResult& result,
                 const Response& r) {
  check(!result.error.empty(), "an error response without an error");
  check(r.status_line.rfind("HTTP/1.1 " + std::to_string(result.status) + " ", 0) == 0,
        "error status line");
  check(r.has("Connection: close"), "an error response without Connection: close");
  check(r.has("Content-Type: application/json"), "an error response that is not JSON");
  check(
      r.has("Content-Length: " + std::to_string(r.body.size())) && r.count("Content-Length:") == 1,
      "Content-Length does not match the body");
  const auto body = nlohmann::json::parse(r.body, nullptr, false);
  check(!body.is_discarded() && body.is_object() && body.size() == 1 && body.contains("error") &&
            body["error"].is_string() && body["error"].get<std::string>() == result.error,
        "the body is not {\"error\": <the error>}");
  check((result.status == 405) == (in.method != "GET"), "405 exactly for a method but GET");
  check(r.has("Allow: GET") == (result.status == 405), "Allow: GET exactly with 405");
  check(r.has("Sec-WebSocket-Version: 13") == (result.status == 426),
        "Sec-WebSocket-Version: 13 exactly with 426");
  check(result.status != 403 || setup.origin_callback, "403 without an origin check");
  check(result.subprotocol.empty() && !result.deflate, "an error response negotiated something");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0)
    return 0;
  Setup setup;
  setup.origin_callback = (data[0] & 0x01) != 0;
  setup.any_origin = (data[0] & 0x02) != 0;
  setup.selector = (data[0] & 0x04) != 0;
  setup.selector_declines = (data[0] & 0x08) != 0;
  setup.deflate = (data[0] & 0x10) == 0;
  setup.http_version = (data[0] & 0x20) != 0 ? 10 : 11;
  const Input in =
      read_request(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));

  Seen seen;
  const HandshakeOptions options = make_options(setup, seen);
  const HandshakeResult result =
      accept_handshake({in.method, in.headers, setup.http_version}, options);

  const int s = result.status;
  check(s == 101 || s == 400 || s == 403 || s == 405 || s == 426, "unexpected status");
  check(result.error.empty() == (s == 101), "error set exactly when not 101");
  const Response r = split_response(result.response);
  if (s == 101) {
    check_switch(in, setup, seen, result, r);
  } else {
    check_error(in, setup, result, r);
  }

  // Header names are case-insensitive: another spelling of them changes nothing.
  Input recased = in;
  for (std::size_t i = 0; i < recased.headers.size(); ++i) {
    for (char& c : recased.headers[i].first)
      c = (i % 2 == 0) ? upper(c) : lower(c);
  }
  Seen seen2;
  const HandshakeResult again = accept_handshake(
      {recased.method, recased.headers, setup.http_version}, make_options(setup, seen2));
  check(again.status == result.status && again.response == result.response &&
            again.subprotocol == result.subprotocol,
        "the case of header names changed the answer");
  return 0;
}
