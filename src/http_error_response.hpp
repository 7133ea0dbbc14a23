// The HTTP/1.1 error response the library writes itself, on a connection it was handed before
// anything else was written there: a refused WebSocket handshake (ws_handshake.cpp), a
// connection the hub refused (Sink::refuse).
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace notify::detail {

// "HTTP/1.1 STATUS PHRASE", a JSON body {"error":MESSAGE} (a generic one when MESSAGE is not
// valid UTF-8), Content-Length and Connection: close, then `extra_fields` (each
// "Name: value\r\n").
std::string http_error_response(int status, std::string_view message,
                                std::string_view extra_fields = {});

}  // namespace notify::detail
