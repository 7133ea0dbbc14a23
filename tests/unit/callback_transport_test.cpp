#include <notify/callback_transport.hpp>

#include <notify/hub.hpp>
#include <notify/sse_sink.hpp>

#include "fixtures.hpp"

#include <doctest/doctest.h>

using test::draft;
using test::no_batching;

TEST_CASE("callback transport: chunks reach the framework's write function") {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  std::string written;
  bool closed = false;
  auto transport = std::make_shared<notify::CallbackTransport>(
      io.get_executor(),
      [&](std::string_view chunk) {
        written.append(chunk);
        return true;
      },
      [&] { closed = true; });
  notify::SseOptions sse;
  sse.write_head = false;
  sse.retry = std::chrono::milliseconds(0);
  auto sink = notify::SseSink::create(transport, sse);
  hub.attach("alice", sink);
  const auto id = hub.publish(draft("alice", "via callback"));
  REQUIRE(test::run_until(io, [&] { return test::parse_sse(written).size() == 2; }));
  // No head, no retry: the stream starts with the init event.
  CHECK(written.rfind("id: ", 0) == 0);
  CHECK(written.find("retry:") == std::string::npos);
  CHECK(test::parse_sse(written)[0].type == "init");
  CHECK(test::parse_sse(written)[1].id == id);
  sink->close();
  REQUIRE(test::run_until(io, [&] { return closed; }));
}

TEST_CASE("callback transport: a write function that reports a closed connection closes the sink") {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  int calls = 0;
  auto transport = std::make_shared<notify::CallbackTransport>(
      io.get_executor(), [&](std::string_view) { return ++calls < 2; });
  hub.attach("alice", notify::SseSink::create(transport));
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(calls == 2);
  CHECK_THROWS_AS(notify::CallbackTransport(io.get_executor(), {}), std::invalid_argument);
}
