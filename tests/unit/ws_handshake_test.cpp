#include <notify/ws_handshake.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

using namespace notify::ws;

namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr const char* rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* rfc_accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

Headers browser_headers() {
  return {{"Host", "example.com"},           {"Upgrade", "websocket"},
          {"Connection", "Upgrade"},         {"Sec-WebSocket-Key", rfc_key},
          {"Origin", "https://example.com"}, {"Sec-WebSocket-Version", "13"}};
}

Headers without(Headers headers, std::string_view name) {
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& h) { return h.first == name; }),
                headers.end());
  return headers;
}

Headers with(Headers headers, std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return headers;
}

Headers replaced(Headers headers, std::string_view name, std::string value) {
  for (auto& h : headers) {
    if (h.first == name)
      h.second = value;
  }
  return headers;
}

// Splits a response into its head lines and its body; checks the framing.
struct Parsed {
  std::string status_line;
  std::vector<std::string> headers;
  std::string body;

  bool has(std::string_view line) const {
    return std::find(headers.begin(), headers.end(), line) != headers.end();
  }
};

Parsed parse(const std::string& response) {
  Parsed p;
  const auto end = response.find("\r\n\r\n");
  REQUIRE(end != std::string::npos);
  std::string head = response.substr(0, end + 2);
  p.body = response.substr(end + 4);
  std::size_t pos = 0;
  for (std::size_t eol; (eol = head.find("\r\n", pos)) != std::string::npos; pos = eol + 2) {
    const std::string line = head.substr(pos, eol - pos);
    if (p.status_line.empty()) {
      p.status_line = line;
    } else {
      p.headers.push_back(line);
    }
  }
  return p;
}

}  // namespace

TEST_CASE("ws handshake: accept_key, RFC 6455 section 1.3") {
  CHECK(accept_key(rfc_key) == rfc_accept);
  CHECK(accept_key("x3JJHMbDL1EzLkh9GBhXDw==") == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST_CASE("ws handshake: a browser's request is accepted") {
  const auto result = accept_handshake({"GET", browser_headers()});
  CHECK(result.status == 101);
  CHECK(accept_handshake({"GET", browser_headers(), 20}).status == 101);  // a later version
  CHECK(accept_handshake({"GET", replaced(browser_headers(), "Host", "")}).status == 101);
  CHECK(result.error.empty());
  CHECK(result.subprotocol.empty());
  CHECK_FALSE(result.deflate);
  CHECK(result.response ==
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n");
}

TEST_CASE("ws handshake: header names in any case, token lists, repeated headers") {
  const Headers headers = {
      {"hOST", "example.com"},
      {"upgrade", "h2c"},
      {"UPGRADE", " WebSocket "},
      {"connection", "keep-alive, UPGRADE"},
      {"sec-websocket-key", " " + std::string(rfc_key) + " "},
      {"SEC-WEBSOCKET-VERSION", "13"},
      {"Sec-Websocket-Extensions", "x-webkit-deflate-frame"},
      {"Sec-Websocket-Extensions", "permessage-deflate; client_max_window_bits"}};
  const auto result = accept_handshake({"GET", headers});
  CHECK(result.status == 101);
  const auto p = parse(result.response);
  CHECK(p.has(std::string("Sec-WebSocket-Accept: ") + rfc_accept));
  REQUIRE(result.deflate);
  CHECK(p.has("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"));
}

TEST_CASE("ws handshake: rejections") {
  struct Row {
    const char* name;
    std::string method;
    Headers headers;
    int status;
    unsigned http_version = 11;
  };
  const auto base = browser_headers();
  const Row rows[] = {
      {"POST", "POST", base, 405},
      {"lower-case get", "get", base, 405},
      {"HTTP/1.0", "GET", base, 400, 10},
      {"HTTP/0.9", "GET", base, 400, 9},
      {"no Host", "GET", without(base, "Host"), 400},
      {"two Hosts", "GET", with(base, "Host", "example.org"), 400},
      {"no Upgrade", "GET", without(base, "Upgrade"), 400},
      {"Upgrade: h2c", "GET", replaced(base, "Upgrade", "h2c"), 400},
      {"Upgrade: websocketx", "GET", replaced(base, "Upgrade", "websocketx"), 400},
      {"no Connection", "GET", without(base, "Connection"), 400},
      {"Connection: keep-alive", "GET", replaced(base, "Connection", "keep-alive"), 400},
      {"Connection: upgraded", "GET", replaced(base, "Connection", "upgraded"), 400},
      {"no version", "GET", without(base, "Sec-WebSocket-Version"), 426},
      {"version 8", "GET", replaced(base, "Sec-WebSocket-Version", "8"), 426},
      {"version 13 twice", "GET", with(base, "Sec-WebSocket-Version", "13"), 426},
      {"no key", "GET", without(base, "Sec-WebSocket-Key"), 400},
      {"two keys", "GET", with(base, "Sec-WebSocket-Key", rfc_key), 400},
      {"key of 15 bytes", "GET", replaced(base, "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"), 400},
      {"key of 17 bytes", "GET", replaced(base, "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAA="),
       400},
      {"key not base64", "GET", replaced(base, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ!="),
       400},
      {"key without padding", "GET", replaced(base, "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ"),
       400},
      {"empty key", "GET", replaced(base, "Sec-WebSocket-Key", ""), 400},
      // Base64 of 16 bytes ends in A, Q, g or w before "==": the rest of its bits are zero.
      {"key with bits past 16 bytes", "GET",
       replaced(base, "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAB=="), 400},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto result = accept_handshake({row.method, row.headers, row.http_version});
    CHECK(result.status == row.status);
    CHECK_FALSE(result.error.empty());
    const auto p = parse(result.response);
    CHECK(p.status_line.rfind("HTTP/1.1 " + std::to_string(row.status) + " ", 0) == 0);
    CHECK(p.has("Content-Type: application/json"));
    CHECK(p.has("Content-Length: " + std::to_string(p.body.size())));
    CHECK(p.has("Connection: close"));
    CHECK(nlohmann::json::parse(p.body) == nlohmann::json{{"error", result.error}});
    CHECK(p.has("Sec-WebSocket-Version: 13") == (row.status == 426));
    CHECK(p.has("Allow: GET") == (row.status == 405));
  }
}

TEST_CASE("ws handshake: origin") {
  std::vector<std::string> seen;
  HandshakeOptions options;
  options.origin_allowed = [&](std::string_view origin) {
    seen.emplace_back(origin);
    return origin == "https://example.com";
  };
  CHECK(accept_handshake({"GET", browser_headers()}, options).status == 101);
  const auto evil = replaced(browser_headers(), "Origin", "https://evil.example");
  const auto result = accept_handshake({"GET", evil}, options);
  CHECK(result.status == 403);
  CHECK(parse(result.response).status_line == "HTTP/1.1 403 Forbidden");
  CHECK(accept_handshake({"GET", without(browser_headers(), "Origin")}, options).status == 403);
  CHECK(seen == std::vector<std::string>{"https://example.com", "https://evil.example", ""});
  // Without a callback every origin is fine.
  CHECK(accept_handshake({"GET", evil}).status == 101);
}

TEST_CASE("ws handshake: subprotocols") {
  std::vector<std::string> offered;
  HandshakeOptions options;
  options.select_subprotocol = [&](const std::vector<std::string>& list) {
    offered = list;
    return std::string("notify.v2");
  };
  auto headers = with(browser_headers(), "Sec-WebSocket-Protocol", "notify.v1, notify.v2");
  headers = with(headers, "Sec-WebSocket-Protocol", "chat");
  auto result = accept_handshake({"GET", headers}, options);
  CHECK(result.status == 101);
  CHECK(result.subprotocol == "notify.v2");
  CHECK(offered == std::vector<std::string>{"notify.v1", "notify.v2", "chat"});
  CHECK(parse(result.response).has("Sec-WebSocket-Protocol: notify.v2"));

  // None offered: the selector is not asked, no header.
  offered.clear();
  result = accept_handshake({"GET", browser_headers()}, options);
  CHECK(result.status == 101);
  CHECK(offered.empty());
  CHECK(result.response.find("Sec-WebSocket-Protocol") == std::string::npos);

  // The selector declines: no header.
  options.select_subprotocol = [](const std::vector<std::string>&) { return std::string(); };
  result = accept_handshake({"GET", headers}, options);
  CHECK(result.status == 101);
  CHECK(result.response.find("Sec-WebSocket-Protocol") == std::string::npos);

  options.select_subprotocol = [](const std::vector<std::string>&) { return std::string("x"); };
  CHECK_THROWS_AS(accept_handshake({"GET", headers}, options), std::logic_error);
}

// Found by fuzzing: an element with a CR (or a space, a control byte) was offered, and
// the selected one was echoed into the response as it was: response splitting.
TEST_CASE("ws handshake: only tokens are offered as subprotocols") {
  std::vector<std::string> offered;
  int calls = 0;
  const auto no_bare_cr = [](const std::string& response) {
    for (std::size_t i = 0; i < response.size(); ++i) {
      if (response[i] == '\r' && response.compare(i, 2, "\r\n") != 0)
        return false;
    }
    return true;
  };
  HandshakeOptions options;
  options.select_subprotocol = [&](const std::vector<std::string>& list) {
    ++calls;
    offered = list;
    return list.front();
  };
  auto headers = with(browser_headers(), "Sec-WebSocket-Protocol",
                      "a\rSet-Cookie: x=1, notify v1, \x01, notify.v1");
  headers = with(headers, "Sec-WebSocket-Protocol", "chat\r\nX: y, notify.v2");
  auto result = accept_handshake({"GET", headers}, options);
  CHECK(result.status == 101);
  CHECK(offered == std::vector<std::string>{"notify.v1", "notify.v2"});
  CHECK(result.subprotocol == "notify.v1");
  CHECK(parse(result.response).has("Sec-WebSocket-Protocol: notify.v1"));
  CHECK(result.response.find("Set-Cookie") == std::string::npos);
  CHECK(no_bare_cr(result.response));

  // Nothing but non-tokens: nothing offered, the selector is not asked.
  calls = 0;
  const auto bad = with(browser_headers(), "Sec-WebSocket-Protocol", "a\rb, c d, \"q\"");
  result = accept_handshake({"GET", bad}, options);
  CHECK(result.status == 101);
  CHECK(calls == 0);
  CHECK(result.response.find("Sec-WebSocket-Protocol") == std::string::npos);
  CHECK(no_bare_cr(result.response));
}

TEST_CASE("ws handshake: permessage-deflate") {
  const auto headers = with(browser_headers(), "Sec-WebSocket-Extensions",
                            "permessage-deflate; client_no_context_takeover; "
                            "server_max_window_bits=15");
  auto result = accept_handshake({"GET", headers});
  REQUIRE(result.deflate);
  CHECK(result.deflate->client_no_context_takeover);
  CHECK(parse(result.response)
            .has("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                 "client_no_context_takeover; server_max_window_bits=15"));

  HandshakeOptions off;
  off.permessage_deflate = false;
  result = accept_handshake({"GET", headers}, off);
  CHECK(result.status == 101);
  CHECK_FALSE(result.deflate);
  CHECK(result.response.find("Sec-WebSocket-Extensions") == std::string::npos);

  // A declined offer is not an error.
  result = accept_handshake(
      {"GET", with(browser_headers(), "Sec-WebSocket-Extensions", "permessage-deflate; bogus")});
  CHECK(result.status == 101);
  CHECK_FALSE(result.deflate);
}
