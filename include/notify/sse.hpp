// The Server-Sent Events wire format (WHATWG HTML, "Server-sent events").
//
// Everything here is a pure function of its arguments: safe from any thread.
#pragma once

#include <notify/export.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace notify::sse {

// An id must not contain CR, LF or NUL: a browser would split the field or ignore the id.
NOTIFY_EXPORT bool is_valid_id(std::string_view id) noexcept;

// An event name must be non-empty and must not contain CR, LF or NUL.
NOTIFY_EXPORT bool is_valid_event_name(std::string_view name) noexcept;

// Appends one event: `id:` (when `id` is non-empty), `event:` (when `event` is non-empty and
// not "message"), one `data:` line per line of `data` (CRLF, CR and LF all end a line, so a
// client reconstructs `data` with LF line ends), then the blank line that dispatches it.
// Throws std::invalid_argument for an invalid id or event name.
NOTIFY_EXPORT void append_event(std::string& out, std::string_view event, std::string_view id,
                                std::string_view data);

NOTIFY_EXPORT std::string encode_event(std::string_view event, std::string_view id,
                                       std::string_view data);

// Appends a comment (`: text`), which clients ignore; each line of `text` becomes one comment
// line. (notify's heartbeats are events, which a page's script can see.)
NOTIFY_EXPORT void append_comment(std::string& out, std::string_view text);

// Appends a `retry:` field (the client's reconnection delay) and a blank line.
NOTIFY_EXPORT void append_retry(std::string& out, std::chrono::milliseconds delay);

// The head of the HTTP/1.1 response that opens a stream: 200, text/event-stream,
// no-cache, keep-alive, and `X-Accel-Buffering: no` so nginx does not buffer it. It ends
// after the last header line: the caller adds its own headers, then "\r\n".
NOTIFY_EXPORT std::string_view response_head() noexcept;

}  // namespace notify::sse
