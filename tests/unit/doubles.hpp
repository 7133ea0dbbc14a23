// Test doubles shared by the unit tests: a transport that records what is written and can
// stall or fail, and a reader of the recorded event stream.
#pragma once

#include <notify/transport.hpp>

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace test {

// A Transport over memory. Writes complete on the io_context unless the transport is
// stalled, in which case they wait for release(). fail_at = N fails the Nth write.
// `single_threaded`: the test runs `io` on one thread, so sinks use its FlushLane.
class RecordingTransport final : public notify::Transport {
 public:
  explicit RecordingTransport(asio::io_context& io, bool single_threaded = false)
      : io_(io), single_threaded_(single_threaded) {}

  asio::any_io_executor executor() const override { return io_.get_executor(); }
  bool single_threaded() const noexcept override { return single_threaded_; }

  void async_write(notify::BufferSpan buffers,
                   std::shared_ptr<notify::TransportHandler> handler) override {
    std::lock_guard lock(mutex_);
    ++writes_;
    std::string chunk;
    for (const auto& b : buffers)
      chunk.append(static_cast<const char*>(b.data()), b.size());
    const bool fail = fail_at_ != 0 && writes_ == fail_at_;
    auto complete = [this, h = std::move(handler), chunk = std::move(chunk), fail]() {
      if (fail || closed_) {
        h->on_write(asio::error::broken_pipe, 0);
        return;
      }
      {
        std::lock_guard lock(mutex_);
        bytes_ += chunk;
        ++completed_;
      }
      h->on_write({}, chunk.size());
    };
    if (stalled_) {
      parked_.push_back(std::move(complete));
    } else {
      asio::post(io_, std::move(complete));
    }
  }

  void close() noexcept override { closed_ = true; }
  std::string_view kind() const noexcept override { return "memory"; }

  void stall() {
    std::lock_guard lock(mutex_);
    stalled_ = true;
  }
  void release() {
    std::deque<std::function<void()>> parked;
    {
      std::lock_guard lock(mutex_);
      stalled_ = false;
      parked.swap(parked_);
    }
    for (auto& f : parked)
      asio::post(io_, std::move(f));
  }
  void fail_at(int n) {
    std::lock_guard lock(mutex_);
    fail_at_ = n;
  }
  std::string bytes() const {
    std::lock_guard lock(mutex_);
    return bytes_;
  }
  int writes() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }
  bool closed() const { return closed_; }

 private:
  asio::io_context& io_;
  bool single_threaded_;
  mutable std::mutex mutex_;
  std::string bytes_;
  int writes_ = 0;
  int completed_ = 0;
  int fail_at_ = 0;
  bool stalled_ = false;
  std::atomic<bool> closed_{false};
  std::deque<std::function<void()>> parked_;
};

struct SseEvent {
  std::string id;  // the id field of this event, if it had one
  bool has_id = false;
  std::string type;  // "message" when absent
  std::string data;
};

// Parses an event stream the way the WHATWG algorithm does (lines end with CRLF, CR or LF;
// `data` lines join with LF; one leading space after the colon is dropped; comments skipped).
// The HTTP head, if present, is skipped. Incomplete trailing events are ignored.
inline std::vector<SseEvent> parse_sse(std::string_view stream, int* comments = nullptr) {
  if (stream.substr(0, 5) == "HTTP/") {
    auto end = stream.find("\r\n\r\n");
    stream = end == std::string_view::npos ? std::string_view() : stream.substr(end + 4);
  }
  std::vector<SseEvent> out;
  SseEvent current;
  std::string data;
  bool has_data = false;
  std::size_t i = 0;
  while (i < stream.size()) {
    std::size_t j = i;
    while (j < stream.size() && stream[j] != '\r' && stream[j] != '\n')
      ++j;
    if (j == stream.size())
      break;  // unterminated line
    std::string_view line = stream.substr(i, j - i);
    i = j + 1;
    if (stream[j] == '\r' && i < stream.size() && stream[i] == '\n')
      ++i;
    if (line.empty()) {
      if (has_data) {
        if (!data.empty() && data.back() == '\n')
          data.pop_back();
        current.data = data;
        if (current.type.empty())
          current.type = "message";
        out.push_back(current);
      }
      current = SseEvent{};
      data.clear();
      has_data = false;
      continue;
    }
    if (line.front() == ':') {
      if (comments)
        ++*comments;
      continue;
    }
    auto colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ')
      value.remove_prefix(1);
    if (field == "data") {
      data.append(value);
      data += '\n';
      has_data = true;
    } else if (field == "event") {
      current.type = value;
    } else if (field == "id") {
      current.id = value;
      current.has_id = true;
    }
  }
  return out;
}

// Runs the io_context until `done()` or the deadline; returns done(). The default deadline
// only guards against a hang: a sanitizer build on a loaded 2-core machine has needed more
// than 5 s for what takes milliseconds alone.
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace test
