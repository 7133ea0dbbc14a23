#include <notify/sse.hpp>

#include <cstring>
#include <stdexcept>
#include <string>

namespace notify::sse {
namespace {

bool has_line_break_or_nul(std::string_view text) noexcept {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// The position of the first CR or LF at or after `from`, or text.size(). Two memchr()
// calls: an event's data is usually one long line (JSON text has no raw line breaks), and
// this is on the path of every event encoded.
std::size_t next_line_break(std::string_view text, std::size_t from) noexcept {
  if (from >= text.size())  // memchr() must not see the null data() of an empty view
    return text.size();
  const char* begin = text.data() + from;
  const char* end = text.data() + text.size();
  if (const void* lf = std::memchr(begin, '\n', static_cast<std::size_t>(end - begin)))
    end = static_cast<const char*>(lf);
  if (const void* cr = std::memchr(begin, '\r', static_cast<std::size_t>(end - begin)))
    end = static_cast<const char*>(cr);
  return static_cast<std::size_t>(end - text.data());
}

// Calls `line` for each line of `text`; CRLF, CR and LF each end a line. A trailing line
// break yields a final empty line, as the client's parser would see it.
template <typename LineFn>
void for_each_line(std::string_view text, LineFn&& line) {
  std::size_t start = 0;
  for (std::size_t i = next_line_break(text, 0); i < text.size();
       i = next_line_break(text, start)) {
    line(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
      ++i;
    start = i + 1;
  }
  line(text.substr(start));
}

}  // namespace

bool is_valid_id(std::string_view id) noexcept {
  return !has_line_break_or_nul(id);
}

bool is_valid_event_name(std::string_view name) noexcept {
  return !name.empty() && !has_line_break_or_nul(name);
}

void append_event(std::string& out, std::string_view event, std::string_view id,
                  std::string_view data) {
  if (!is_valid_id(id))
    throw std::invalid_argument("sse: an id must not contain CR, LF or NUL");
  if (!event.empty() && !is_valid_event_name(event))
    throw std::invalid_argument("sse: an event name must not contain CR, LF or NUL");
  if (!id.empty()) {
    out += "id: ";
    out += id;
    out += '\n';
  }
  if (!event.empty() && event != "message") {
    out += "event: ";
    out += event;
    out += '\n';
  }
  for_each_line(data, [&out](std::string_view line) {
    out += "data: ";
    out += line;
    out += '\n';
  });
  out += '\n';
}

std::string encode_event(std::string_view event, std::string_view id, std::string_view data) {
  std::string out;
  out.reserve(data.size() + event.size() + id.size() + 32);
  append_event(out, event, id, data);
  return out;
}

void append_comment(std::string& out, std::string_view text) {
  for_each_line(text, [&out](std::string_view line) {
    out += ": ";
    out += line;
    out += '\n';
  });
  out += '\n';
}

void append_retry(std::string& out, std::chrono::milliseconds delay) {
  out += "retry: ";
  out += std::to_string(delay.count() < 0 ? 0 : delay.count());
  out += "\n\n";
}

std::string_view response_head() noexcept {
  return "HTTP/1.1 200 OK\r\n"
         "Content-Type: text/event-stream; charset=utf-8\r\n"
         "Cache-Control: no-cache\r\n"
         "Connection: keep-alive\r\n"
         "X-Accel-Buffering: no\r\n";
}

}  // namespace notify::sse
