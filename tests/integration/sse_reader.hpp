// SseStream: a test client for GET /api/notifications/stream over a raw socket.
//
// It parses the event stream as the WHATWG HTML spec ("Server-sent events", "Interpreting an
// event stream") tells a browser to: lines end with CRLF, LF or CR; `data:` lines are joined
// with LF; one leading space of a value is dropped; the last event id persists across
// events; a block without data dispatches nothing. Comments and heartbeat events are counted.
#pragma once

#include "http_client.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace itest {

struct SseEvent {
  std::string type;  // "message" when the block had no `event:`
  std::string data;
  std::string last_event_id;      // the stream's last event id when it was dispatched
  std::optional<std::string> id;  // the `id:` field of this event's own block, if any

  nlohmann::json json() const { return nlohmann::json::parse(data); }
};

// The incremental parser, separated from the socket.
class SseParser {
 public:
  void feed(std::string_view bytes);
  // Dispatched events not yet taken.
  std::vector<SseEvent>& events() noexcept { return events_; }
  std::size_t comments() const noexcept { return comments_; }
  std::optional<std::uint64_t> retry() const noexcept { return retry_; }

 private:
  void line(std::string_view text);
  void dispatch();

  std::string partial_;   // an unterminated line
  bool skip_lf_ = false;  // the previous chunk ended with CR
  bool started_ = false;  // a BOM is only stripped at the very start
  std::string event_type_;
  std::string data_;
  std::string last_event_id_;
  std::optional<std::string> block_id_;
  std::optional<std::uint64_t> retry_;
  std::size_t comments_ = 0;
  std::vector<SseEvent> events_;
};

class SseStream {
 public:
  // Connects and sends `GET target` with `headers`; reads the response head.
  SseStream(std::uint16_t port, const std::string& target, const Headers& headers = {},
            std::chrono::milliseconds timeout = default_timeout);

  // The stream of `user` (?user=...), optionally resuming with `lastEventId`.
  static std::string target_for(const std::string& user);

  int status() const noexcept { return response_.status; }
  const HttpResponse& response() const noexcept { return response_; }

  // The next event; nullopt on timeout or EOF.
  std::optional<SseEvent> next(std::chrono::milliseconds timeout = default_timeout);
  // Like next(), but fails (throws) unless the event comes and has type `type`.
  SseEvent expect(const std::string& type, std::chrono::milliseconds timeout = default_timeout);
  // True when a heartbeat event (beyond those already seen) arrives before the deadline.
  // Heartbeats are counted, never returned by next().
  bool wait_heartbeat(std::chrono::milliseconds timeout);
  // True when the server closes the stream before the deadline (events meanwhile are kept).
  bool wait_eof(std::chrono::milliseconds timeout);
  // True when no event arrives within `duration`.
  bool quiet_for(std::chrono::milliseconds duration);

  std::size_t comments() const noexcept { return parser_.comments(); }
  std::size_t heartbeats() const noexcept { return heartbeats_; }
  std::optional<std::uint64_t> retry() const noexcept { return parser_.retry(); }
  void close() { socket_.close(); }

 private:
  // Reads more bytes into the parser. >0, 0 (EOF), -1 (timeout), -2 (error).
  long pump(Clock::time_point deadline);
  // Parses `bytes`; heartbeat events are counted and dropped.
  void feed(std::string_view bytes);

  Socket socket_;
  HttpResponse response_;
  SseParser parser_;
  std::size_t taken_ = 0;  // events returned so far (index into parser_.events())
  std::size_t heartbeats_ = 0;
  bool eof_ = false;
};

}  // namespace itest
