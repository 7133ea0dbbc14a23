// HttpSession: one keep-alive HTTP/1.1 connection of the Beast host, on Boost.Asio.
//
// Routes (the demo's paths, so that the demo's page and clients work against it):
//   POST /api/notifications             a notification (camelCase JSON) -> 202 {"id":ID}
//   GET  /api/notifications/stream?user=U   an SSE stream (Last-Event-ID or ?lastEventId=)
//   GET  /api/notifications/ws?user=U       a WebSocket (read receipts over it, as the demo's)
// A stream request ends the session: its socket goes to notify (NotifySide). The user comes
// from the query string, standing in for the host's own authentication.
//
// Lifetime: shared_ptr, kept alive by its pending operation. Thread safety: run() once; the
// session runs on its socket's io_context (one thread).
#pragma once

#include "notify_side.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace beast_host {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, NotifySide& notify);
  void run();

 private:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  void read();
  void on_read(boost::beast::error_code ec);
  void handle(Request request);
  void publish(const Request& request);
  void open_stream(const Request& request, bool websocket);
  void reply(unsigned status, std::string json_body, bool keep_alive);
  // {"error": message}, as the demo answers (invalid UTF-8 in a message is replaced).
  void reply_error(unsigned status, std::string_view message, bool keep_alive);
  void reply_raw(std::string bytes);  // a whole response; closes after it

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  Response response_;
  std::string raw_;
  NotifySide& notify_;
};

}  // namespace beast_host
