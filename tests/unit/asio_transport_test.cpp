#include <notify/asio_transport.hpp>

#include <notify/hub.hpp>
#include <notify/sse_sink.hpp>

#include "fixtures.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

using asio::ip::tcp;

namespace {

using test::draft;
using test::no_batching;
using test::SocketPair;

// Reads from the client socket (non-blocking, driven by the io_context) until `done`.
struct Reader {
  tcp::socket& socket;
  std::string bytes;
  bool eof = false;
  std::array<char, 4096> buffer{};
  void start() {
    socket.async_read_some(asio::buffer(buffer), [this](std::error_code ec, std::size_t n) {
      if (ec) {
        eof = true;
        return;
      }
      bytes.append(buffer.data(), n);
      start();
    });
  }
};

}  // namespace

TEST_CASE("asio transport: an SSE stream over a real loopback socket") {
  asio::io_context io;
  notify::HubOptions options;
  options.batch_window = std::chrono::milliseconds(0);
  notify::NotificationHub hub(io.get_executor(), options);
  SocketPair pair(io);
  Reader reader{pair.client, {}, false, {}};
  reader.start();

  auto transport = notify::make_asio_transport(std::move(pair.server));
  CHECK(transport->kind() == "tcp");
  hub.attach("alice", notify::SseSink::create(transport));
  REQUIRE(test::run_until(io, [&] { return test::parse_sse(reader.bytes).size() == 1; }));
  CHECK(reader.bytes.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reader.bytes.find("\r\n\r\nretry: 2000\n\n") != std::string::npos);

  const auto id = hub.publish(draft("alice", "over tcp \xE2\x9C\x93"));
  REQUIRE(test::run_until(io, [&] { return test::parse_sse(reader.bytes).size() == 2; }));
  const auto event = test::parse_sse(reader.bytes)[1];
  CHECK(event.id == id);
  CHECK(nlohmann::json::parse(event.data)["title"] == "over tcp \xE2\x9C\x93");

  SUBCASE("the client going away detaches the connection") {
    pair.client.close();
    REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  }
  SUBCASE("stop closes the socket: the client sees EOF") {
    hub.stop();
    REQUIRE(test::run_until(io, [&] { return reader.eof; }));
    CHECK(hub.connection_count() == 0);
  }
}
