// HttpConnection: one keep-alive HTTP/1.1 connection of the demo server, parsed with
// http-parser.
//
// Requests are answered one at a time, in order: the parser pauses after each request and
// resumes once its response (one write) is out, so pipelined requests keep their order.
// A stream request (SSE or WebSocket) takes the stream (TCP or TLS) out of the connection and
// ends it.
//
// Lifetime: shared_ptr, kept alive by its pending operations. Thread safety: start() once
// after construction; stop() from any thread. Everything else runs on the socket's executor
// (an io_context run by one thread).
#pragma once

#include "api.hpp"
#include "client_stream.hpp"
#include "http_message.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <http_parser.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace demo {

struct ConnectionLimits {
  std::size_t max_head_bytes = 16 * 1024;            // request line + headers -> 431
  std::size_t max_body_bytes = 1024 * 1024;          // -> 413
  std::chrono::milliseconds idle_timeout{60000};     // between requests on a keep-alive connection
  std::chrono::milliseconds request_timeout{30000};  // from the first byte of a request to its end
  std::chrono::milliseconds write_timeout{30000};    // one response
};

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(ClientStream stream, Api& api, ConnectionLimits limits);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  void start();
  // Closes the connection (server shutdown). Safe from any thread; idempotent.
  void stop();

 private:
  // Why a callback stopped the parser, for the answer.
  enum class Refusal {
    none,
    head_too_large,      // 431
    body_too_large,      // 413
    space_before_colon,  // 400: a field name that would mean one thing here, another elsewhere
    transfer_coding,     // 411: a body without Content-Length
  };

  // http-parser callbacks.
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, std::size_t n);
  static int on_header_field(http_parser* p, const char* at, std::size_t n);
  static int on_header_value(http_parser* p, const char* at, std::size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_body(http_parser* p, const char* at, std::size_t n);
  static int on_message_complete(http_parser* p);
  static const http_parser_settings& settings() noexcept;

  bool count_head(std::size_t n);
  bool finish_header();  // false: the field's name is refused (refusal_ says why)
  void reset_request();

  void read_more();
  void on_read(std::error_code ec, std::size_t n);
  void process();
  void handle_request();
  // `attempted`: the bytes given to the parser by the call that failed.
  void respond_to_parse_error(std::string_view attempted);
  void send(const HttpResponse& response, bool keep_alive, bool head_only = false);
  // Writes a whole response as it is; closes after it unless `keep_alive`.
  void send_bytes(std::string bytes, bool keep_alive);
  void write_out(bool keep_alive);  // writes out_
  void hand_over();
  void on_sent(std::error_code ec, bool keep_alive);
  void send_continue();

  // The connection times out `timeout` from now (replacing the deadline armed before).
  void arm_timer(std::chrono::milliseconds timeout);
  void wait_for_deadline();
  void on_timeout();
  void linger_close();
  void close();

  ClientStream stream_;
  asio::steady_timer timer_;
  Api& api_;
  ConnectionLimits limits_;

  http_parser parser_{};
  // Small on purpose: a request head fits, a large body takes a few more reads, and the
  // thousands of connections being set up at once do not leave a heap of freed 16 KiB
  // blocks behind once they become event streams.
  std::array<char, 4 * 1024> read_buffer_{};
  std::string input_;  // bytes received and not yet given to the parser
  std::size_t input_offset_ = 0;

  HttpRequest request_;           // the request being parsed; its strings are reused by the next
  std::size_t header_count_ = 0;  // slots of request_.headers this request has filled
  std::string url_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  bool in_message_ = false;       // between the first byte of a request and its end
  bool expect_continue_ = false;  // the client waits for "100 Continue" before its body
  std::size_t head_bytes_ = 0;
  Refusal refusal_ = Refusal::none;

  std::string out_;  // the response being written
  bool writing_ = false;
  bool closed_ = false;
  // One wait at a time on timer_; it may end before deadline_ and then waits again.
  std::chrono::steady_clock::time_point deadline_;
  bool timer_waiting_ = false;
  unsigned timer_generation_ = 0;
};

}  // namespace demo
