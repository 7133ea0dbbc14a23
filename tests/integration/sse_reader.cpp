#include "sse_reader.hpp"

#include <algorithm>
#include <stdexcept>

namespace itest {

// --- SseParser ------------------------------------------------------------------------

void SseParser::feed(std::string_view bytes) {
  if (!started_ && !bytes.empty()) {
    partial_.append(bytes);
    if (partial_.size() < 3 &&
        std::string_view("\xEF\xBB\xBF").substr(0, partial_.size()) == partial_)
      return;  // could still be a BOM
    started_ = true;
    if (partial_.compare(0, 3, "\xEF\xBB\xBF") == 0)
      partial_.erase(0, 3);
    std::string pending;
    pending.swap(partial_);
    feed(pending);
    return;
  }
  for (const char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n')
        continue;  // the LF of a CRLF split across two chunks or not
    }
    if (c == '\r') {
      line(partial_);
      partial_.clear();
      skip_lf_ = true;
    } else if (c == '\n') {
      line(partial_);
      partial_.clear();
    } else {
      partial_ += c;
    }
  }
}

void SseParser::line(std::string_view text) {
  if (text.empty()) {
    dispatch();
    return;
  }
  if (text.front() == ':') {
    ++comments_;
    return;
  }
  std::string_view field = text;
  std::string_view value;
  if (const auto colon = text.find(':'); colon != std::string_view::npos) {
    field = text.substr(0, colon);
    value = text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
  }
  if (field == "event") {
    event_type_ = std::string(value);
  } else if (field == "data") {
    data_.append(value);
    data_ += '\n';
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) {
      last_event_id_ = std::string(value);
      block_id_ = std::string(value);
    }
  } else if (field == "retry") {
    if (!value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos) {
      try {
        retry_ = std::stoull(std::string(value));
      } catch (...) {
      }
    }
  }
  // Other fields are ignored.
}

void SseParser::dispatch() {
  auto id = std::move(block_id_);
  block_id_.reset();
  if (data_.empty()) {
    event_type_.clear();
    return;
  }
  if (data_.back() == '\n')
    data_.pop_back();
  SseEvent e;
  e.type = event_type_.empty() ? "message" : event_type_;
  e.data = std::move(data_);
  e.last_event_id = last_event_id_;
  e.id = std::move(id);
  events_.push_back(std::move(e));
  data_.clear();
  event_type_.clear();
}

// --- SseStream ------------------------------------------------------------------------

std::string SseStream::target_for(const std::string& user) {
  return "/api/notifications/stream?user=" + url_encode(user);
}

SseStream::SseStream(std::uint16_t port, const std::string& target, const Headers& headers,
                     std::chrono::milliseconds timeout)
    : socket_(port, timeout) {
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nAccept: text/event-stream\r\n";
  for (const auto& h : headers)
    req += h.first + ": " + h.second + "\r\n";
  req += "\r\n";
  if (!socket_.send_all(req, timeout))
    throw std::runtime_error("sse: cannot send the request");

  const auto deadline = Clock::now() + timeout;
  std::string buffer;
  std::size_t end;
  while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
    const long n = socket_.recv_some(buffer, deadline);
    if (n <= 0)
      throw std::runtime_error("sse: no response head; got '" + buffer + "'");
  }
  response_.head = buffer.substr(0, end);
  std::string rest = buffer.substr(end + 4);
  if (!parse_response_head(response_.head, response_))
    throw std::runtime_error("sse: bad response head '" + response_.head + "'");
  if (response_.status != 200) {
    // An error answer: read its body (Content-Length) so that tests can look at it.
    std::size_t length = 0;
    if (response_.has_header("content-length"))
      length = std::stoul(response_.header("content-length"));
    while (rest.size() < length) {
      if (socket_.recv_some(rest, deadline) <= 0)
        break;
    }
    response_.body = rest;
    return;
  }
  feed(rest);
}

void SseStream::feed(std::string_view bytes) {
  parser_.feed(bytes);
  auto& events = parser_.events();
  const auto first = events.begin() + static_cast<std::ptrdiff_t>(taken_);
  const auto kept = std::remove_if(first, events.end(), [this](const SseEvent& e) {
    heartbeats_ += e.type == "heartbeat" ? 1 : 0;
    return e.type == "heartbeat";
  });
  events.erase(kept, events.end());
}

long SseStream::pump(Clock::time_point deadline) {
  if (eof_)
    return 0;
  std::string chunk;
  const long n = socket_.recv_some(chunk, deadline);
  if (n > 0)
    feed(chunk);
  if (n == 0 || n == -2)
    eof_ = true;
  return n;
}

std::optional<SseEvent> SseStream::next(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (taken_ >= parser_.events().size()) {
    if (pump(deadline) <= 0)
      return std::nullopt;
  }
  return parser_.events()[taken_++];
}

SseEvent SseStream::expect(const std::string& type, std::chrono::milliseconds timeout) {
  auto e = next(timeout);
  if (!e)
    throw std::runtime_error("sse: no '" + type + "' event in time");
  if (e->type != type)
    throw std::runtime_error("sse: expected '" + type + "', got '" + e->type + "' with " + e->data);
  return std::move(*e);
}

bool SseStream::wait_heartbeat(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::size_t seen = heartbeats_;
  while (heartbeats_ == seen) {
    if (pump(deadline) <= 0)
      return false;
  }
  return true;
}

bool SseStream::wait_eof(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!eof_) {
    if (pump(deadline) == -1)
      return false;
  }
  return true;
}

bool SseStream::quiet_for(std::chrono::milliseconds duration) {
  const auto deadline = Clock::now() + duration;
  while (taken_ >= parser_.events().size()) {
    const long n = pump(deadline);
    if (n == -1)
      return true;  // the time passed without an event
    if (n <= 0)
      return true;  // closed: no event either
  }
  return false;
}

}  // namespace itest
