#include "http_session.hpp"

#include "http_message.hpp"  // the demo's JSON error responses (examples/demo/)
#include "url.hpp"           // the demo's query-string decoding

#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace beast_host {
namespace {

namespace http = boost::beast::http;

constexpr auto read_timeout = std::chrono::seconds(30);
constexpr std::size_t max_body_bytes = 64 * 1024;

std::string_view view(boost::beast::string_view s) {
  return {s.data(), s.size()};
}

// Gives up the socket's descriptor, open, for notify to own; descriptor -1 when that fails
// (the socket is then closed).
SocketHandle release_descriptor(boost::asio::ip::tcp::socket socket) {
  boost::system::error_code ec;
  const auto local = socket.local_endpoint(ec);
  if (ec)
    return {};
  const bool ipv6 = local.address().is_v6();
  const int descriptor = socket.release(ec);
  if (ec)
    return {};
  return {descriptor, ipv6};
}

}  // namespace

HttpSession::HttpSession(boost::asio::ip::tcp::socket socket, NotifySide& notify)
    : stream_(std::move(socket)), notify_(notify) {}

void HttpSession::run() {
  read();
}

void HttpSession::read() {
  parser_.emplace();
  parser_->body_limit(max_body_bytes);
  stream_.expires_after(read_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](boost::beast::error_code ec, std::size_t) { self->on_read(ec); });
}

void HttpSession::on_read(boost::beast::error_code ec) {
  if (ec == http::error::end_of_stream) {  // the client closed between requests
    stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec == http::error::body_limit)
    return reply_error(413, "the body is larger than 64 KiB", false);
  if (ec.category() == boost::beast::http::make_error_code(http::error::bad_target).category())
    return reply_error(400, ec.message(), false);
  if (ec)
    return;  // a timeout or a reset: the connection closes with the session
  // Nothing on these paths is expected to throw but an allocation; should anything, it is
  // this request's 500, not the end of the server (Beast runs this on its io thread).
  try {
    handle(parser_->release());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-beast: request failed: %s\n", e.what());
    reply_error(500, "internal error", false);
  }
}

void HttpSession::handle(Request request) {
  const auto target = view(request.target());
  const auto path = target.substr(0, target.find('?'));
  if (path == "/api/notifications") {
    if (request.method() != http::verb::post)
      return reply_error(405, "POST a notification", request.keep_alive());
    return publish(request);
  }
  if (path == "/api/notifications/stream" || path == "/api/notifications/ws")
    return open_stream(request, path == "/api/notifications/ws");
  reply_error(404, "no such endpoint", request.keep_alive());
}

void HttpSession::publish(const Request& request) {
  auto answer = notify_.publish(request.body());
  reply(answer.status, std::move(answer.json), request.keep_alive());
}

void HttpSession::open_stream(const Request& request, bool websocket) {
  if (request.method() != http::verb::get)
    return reply_error(405, "a stream is opened with GET", false);
  const auto target = view(request.target());
  const auto question = target.find('?');
  const auto query = demo::QueryParams::parse(
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1));
  const std::string* user = query ? query->find("user") : nullptr;
  if (!user || user->empty())
    return reply_error(400, "?user= names the user", false);
  // Bytes after a stream's request would be lost in the move to notify's socket: a client
  // must wait for the stream to start.
  if (buffer_.size() != 0)
    return reply_error(400, "data after a stream request", false);
  std::string cursor(view(request["Last-Event-ID"]));
  if (const std::string* from = query->find("lastEventId"); cursor.empty() && from)
    cursor = *from;

  notify::ws::HandshakeResult handshake;
  if (websocket) {
    notify::ws::HandshakeRequest offer{view(request.method_string()), {}, request.version()};
    for (const auto& field : request)
      offer.headers.emplace_back(std::string(view(field.name_string())),
                                 std::string(view(field.value())));
    // Any origin: a host serving browsers passes HandshakeOptions::origin_allowed.
    handshake = notify::ws::accept_handshake(offer);
    if (handshake.status != 101)  // 400, 405 or 426, as JSON
      return reply_raw(std::move(handshake.response));
  }

  stream_.expires_never();
  const auto socket = release_descriptor(stream_.release_socket());
  if (socket.descriptor < 0)
    return;
  if (websocket)
    notify_.open_websocket(socket, *user, std::move(cursor), std::move(handshake));
  else
    notify_.open_events(socket, *user, std::move(cursor));
}

void HttpSession::reply(unsigned status, std::string json_body, bool keep_alive) {
  response_ = {};
  response_.result(status);
  response_.set(http::field::content_type, "application/json");
  response_.keep_alive(keep_alive);
  response_.body() = std::move(json_body);
  response_.prepare_payload();
  http::async_write(
      stream_, response_,
      [self = shared_from_this(), keep_alive](boost::beast::error_code ec, std::size_t) {
        if (ec)
          return;
        if (keep_alive)
          return self->read();
        self->stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
      });
}

void HttpSession::reply_error(unsigned status, std::string_view message, bool keep_alive) {
  reply(status, demo::HttpResponse::error(static_cast<int>(status), message).body, keep_alive);
}

void HttpSession::reply_raw(std::string bytes) {
  raw_ = std::move(bytes);
  boost::asio::async_write(stream_, boost::asio::buffer(raw_),
                           [self = shared_from_this()](boost::beast::error_code ec, std::size_t) {
                             self->stream_.socket().shutdown(
                                 boost::asio::ip::tcp::socket::shutdown_send, ec);
                           });
}

}  // namespace beast_host
