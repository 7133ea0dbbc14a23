// notify-beast: notify inside a Boost.Beast server.
//
// Beast (on Boost.Asio) parses HTTP and routes; notify (on standalone Asio) owns the event
// streams. The two run on io_contexts of their own, one thread each, and a stream request's
// socket moves from the one to the other by its descriptor (notify_side.hpp).
//
//   notify-beast [--port N] [--max-connections N]    (port 8082 by default; 0 picks one)
//   curl -N 'http://127.0.0.1:8082/api/notifications/stream?user=alice' &
//   curl -X POST http://127.0.0.1:8082/api/notifications -d '{"userId":"alice","title":"Hi"}'
// WebSocket: ws://127.0.0.1:8082/api/notifications/ws?user=alice. SIGINT or SIGTERM stops it.
#include "http_session.hpp"
#include "notify_side.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <string>

namespace {

using boost::asio::ip::tcp;

void accept(tcp::acceptor& acceptor, beast_host::NotifySide& notify) {
  acceptor.async_accept([&acceptor, &notify](boost::system::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted)
      return;  // stopping
    if (!ec)
      std::make_shared<beast_host::HttpSession>(std::move(socket), notify)->run();
    accept(acceptor, notify);
  });
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 8082;
  beast_host::StreamLimits limits;
  for (int i = 1; i < argc; i += 2) {
    const std::string name = argv[i];
    char* end = nullptr;
    const unsigned long value = i + 1 < argc ? std::strtoul(argv[i + 1], &end, 10) : 0;
    const bool number = end && end != argv[i + 1] && *end == '\0';
    if (name == "--port" && number && value <= 65535) {
      port = static_cast<unsigned short>(value);
    } else if (name == "--max-connections" && number && value > 0) {
      limits.max_connections = value;
    } else {
      std::fprintf(stderr, "usage: %s [--port N] [--max-connections N]\n", argv[0]);
      return 2;
    }
  }
  try {
    // Beast's side: accepting and plain HTTP, on this thread.
    boost::asio::io_context http_io;
    tcp::acceptor acceptor(http_io, {boost::asio::ip::make_address("127.0.0.1"), port});
    boost::asio::signal_set signals(http_io, SIGINT, SIGTERM);

    // notify's side: the hub and every stream, on a thread of its own.
    beast_host::NotifySide notify(limits);
    accept(acceptor, notify);
    signals.async_wait([&](boost::system::error_code, int) {
      acceptor.close();
      notify.stop();  // ends every stream
      http_io.stop();
    });
    std::printf("listening on http://127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);

    http_io.run();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-beast: %s\n", e.what());
    return 1;
  }
}
