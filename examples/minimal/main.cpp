// notify-minimal: the smallest complete host. An Asio server whose every request is an SSE
// stream for the user named in `?user=`; a timer publishes a notification to "alice" every
// two seconds. Try: notify-minimal 8081 & curl -N 'http://127.0.0.1:8081/?user=alice'
//
// The host's own HTTP parsing is stood in for by Debian's http-parser; a real host already
// has a router and authentication at this point.
#include <notify/notify.hpp>

#include <asio.hpp>
#include <http_parser.h>

#include <iostream>
#include <memory>
#include <string>

using asio::ip::tcp;

namespace {

// The user from the request target's query (`?user=NAME`), or "" when absent.
std::string user_of(const std::string& head) {
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  std::string target;
  http_parser_settings settings{};
  settings.on_url = [](http_parser* p, const char* at, std::size_t n) {
    static_cast<std::string*>(p->data)->append(at, n);
    return 0;
  };
  parser.data = &target;
  http_parser_execute(&parser, &settings, head.data(), head.size());
  http_parser_url url{};
  http_parser_url_init(&url);
  if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0 ||
      !(url.field_set & (1 << UF_QUERY)))
    return {};
  const auto query = target.substr(url.field_data[UF_QUERY].off, url.field_data[UF_QUERY].len);
  const auto at = query.find("user=");
  return at == std::string::npos ? "" : query.substr(at + 5, query.find('&', at) - at - 5);
}

void accept(tcp::acceptor& acceptor, notify::NotificationHub& hub) {
  acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
    if (ec)
      return;
    auto s = std::make_shared<tcp::socket>(std::move(socket));
    auto head = std::make_shared<std::string>();
    asio::async_read_until(*s, asio::dynamic_buffer(*head), "\r\n\r\n",
                           [s, head, &hub](std::error_code ec, std::size_t) {
                             const auto user = ec ? "" : user_of(*head);
                             if (user.empty())
                               return;
                             // --- the integration: a socket becomes a notification stream. `io`
                             // runs on this one thread, so the transport needs no strand.
                             auto sink = notify::SseSink::create(notify::make_asio_transport(
                                 std::move(*s), notify::Threading::single));
                             std::error_code refused;
                             hub.attach(user, sink, {}, refused);
                             if (refused)  // too many connections, or stopping: 429 or 503
                               sink->refuse(refused);
                           });
    accept(acceptor, hub);
  });
}

}  // namespace

int main(int argc, char** argv) {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor());  // in-process bus, memory store

  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"),
                              static_cast<unsigned short>(argc > 1 ? std::stoi(argv[1]) : 8081)});
  accept(acceptor, hub);

  asio::steady_timer tick(io);
  int count = 0;
  std::function<void()> publish_every_2s = [&] {
    tick.expires_after(std::chrono::seconds(2));
    tick.async_wait([&](std::error_code ec) {
      if (ec)
        return;
      notify::Notification n;
      n.user_id = "alice";
      n.type = "system";
      n.title = "Tick " + std::to_string(++count);
      hub.publish(n);  // safe from any thread
      publish_every_2s();
    });
  };
  publish_every_2s();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    hub.stop();
    acceptor.close();
    tick.cancel();
  });
  std::cout << "listening on http://127.0.0.1:" << acceptor.local_endpoint().port() << std::endl;
  io.run();
}
