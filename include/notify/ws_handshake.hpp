// The server side of the WebSocket opening handshake (RFC 6455 section 4.2), independent of
// any HTTP framework: the caller hands over the request's method and headers and writes the
// response this returns.
//
// Thread safety: pure functions (the options' callbacks are called on the calling thread).
#pragma once

#include <notify/export.hpp>
#include <notify/ws_deflate.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace notify::ws {

struct HandshakeRequest {
  std::string_view method;
  // Header names in any case; a header may be repeated (its values are then one list).
  std::vector<std::pair<std::string, std::string>> headers;
  // The request's HTTP version as major * 10 + minor (Beast's request::version(); from
  // http-parser, http_major * 10 + http_minor): a handshake needs HTTP/1.1 or later.
  unsigned http_version = 11;
};

struct HandshakeOptions {
  // Called with the Origin header ("" when there is none); false answers 403. Empty: every
  // origin is allowed.
  std::function<bool(std::string_view origin)> origin_allowed;
  // Called with the subprotocols the client offered (Sec-WebSocket-Protocol, in its order)
  // when it offered any; returns the one to speak, or "" for none. Returning one that was
  // not offered throws std::logic_error. An element that is not an HTTP token (RFC 6455
  // section 4.1: no spaces, separators or control bytes) is not an offer and is left out.
  std::function<std::string(const std::vector<std::string>& offered)> select_subprotocol;
  bool permessage_deflate = true;  // accept a permessage-deflate offer
};

struct HandshakeResult {
  int status = 0;           // 101 on success, else 400, 403, 405 or 426
  std::string response;     // the whole HTTP/1.1 response (for an error, with its JSON body)
  std::string error;        // why it failed; empty on success
  std::string subprotocol;  // the one selected, or empty
  std::optional<DeflateParams> deflate;  // set when permessage-deflate was negotiated
};

// Checks the request, in this order: method GET (else 405); HTTP/1.1 or later, with exactly
// one Host header (400, RFC 6455 section 4.2.1 and RFC 9112 section 3.2); Upgrade lists
// "websocket" and Connection lists "upgrade", case-insensitively (400);
// Sec-WebSocket-Version is 13 (426, with "Sec-WebSocket-Version: 13"); Sec-WebSocket-Key is
// the base64 of 16 bytes (400); the origin is allowed (403). An error response is {"error": "..."}
// as JSON with Connection: close; the connection should be closed once it is written.
NOTIFY_EXPORT HandshakeResult accept_handshake(const HandshakeRequest& request,
                                               const HandshakeOptions& options = {});

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
NOTIFY_EXPORT std::string accept_key(std::string_view client_key);

}  // namespace notify::ws
