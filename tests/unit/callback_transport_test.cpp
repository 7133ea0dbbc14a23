#include <notify/callback_transport.hpp>

#include <notify/hub.hpp>
#include <notify/sse_sink.hpp>

#include "fixtures.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

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
  REQUIRE(test::run_until(io, [&] { return calls == 1; }));  // the head and init, one chunk
  hub.publish(draft("alice"));
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(calls == 2);
  CHECK_THROWS_AS(
      notify::CallbackTransport(io.get_executor(), notify::CallbackTransport::WriteChunk{}),
      std::invalid_argument);
  CHECK_THROWS_AS(
      notify::CallbackTransport(io.get_executor(), notify::CallbackTransport::WriteChunkAsync{}),
      std::invalid_argument);
}

TEST_CASE("callback transport: a backlog reaches the write function in chunks of up to 64 KiB") {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  std::vector<std::string> chunks;
  auto transport =
      std::make_shared<notify::CallbackTransport>(io.get_executor(), [&](std::string_view chunk) {
        chunks.emplace_back(chunk);
        return true;
      });
  hub.attach("alice", notify::SseSink::create(transport));
  REQUIRE(test::run_until(io, [&] { return chunks.size() == 1; }));  // the head and init
  // Queued while nothing runs the executor: one write of five events, one call.
  for (int i = 0; i < 5; ++i)
    hub.publish(draft("alice", std::to_string(i)));
  REQUIRE(test::run_until(io, [&] { return chunks.size() == 2; }));
  io.run_for(std::chrono::milliseconds(20));
  CHECK(chunks.size() == 2);
  CHECK(test::parse_sse(chunks[1]).size() == 5);
  // Ten events of about 10 KiB: more than one chunk, none over the limit.
  for (int i = 0; i < 10; ++i) {
    auto big = draft("alice", std::to_string(i));
    big.body = std::string(10 * 1024, 'b');
    hub.publish(big);
  }
  std::string backlog;
  REQUIRE(test::run_until(io, [&] {
    backlog.clear();
    for (std::size_t i = 2; i < chunks.size(); ++i)
      backlog += chunks[i];
    return test::parse_sse(backlog).size() == 10;
  }));
  CHECK(chunks.size() >= 4);
  for (std::size_t i = 2; i < chunks.size(); ++i)
    CHECK(chunks[i].size() <= 64 * 1024);
  // A single event larger than the limit goes alone, whole.
  auto huge = draft("alice", "huge");
  huge.body = std::string(60 * 1024, 'h');
  huge.data = {{"more", std::string(40 * 1024, 'm')}};
  const auto before = chunks.size();
  hub.publish(huge);
  REQUIRE(test::run_until(io, [&] { return chunks.size() == before + 1; }));
  CHECK(test::parse_sse(chunks.back()).size() == 1);
  CHECK(chunks.back().size() > 100 * 1024);
}

namespace {

// A framework's asynchronous writes as the test drives them: each chunk waits in `pending`
// with its `done` until the test finishes it.
struct AsyncFramework {
  std::string sent;
  std::vector<std::pair<std::string, notify::CallbackTransport::Done>> pending;
  int closes = 0;

  std::shared_ptr<notify::CallbackTransport> transport(asio::io_context& io) {
    return std::make_shared<notify::CallbackTransport>(
        io.get_executor(),
        [this](std::string_view chunk, notify::CallbackTransport::Done done) {
          pending.emplace_back(std::string(chunk), std::move(done));
        },
        [this] { ++closes; });
  }
  // Attaches alice's SSE stream over this framework and waits for its first chunk.
  void attach(asio::io_context& io, notify::NotificationHub& hub) {
    hub.attach("alice", notify::SseSink::create(transport(io)));
    REQUIRE(test::run_until(io, [&] { return !pending.empty(); }));
  }
  // Sends the chunks handed over so far and says so.
  void finish_all(bool ok = true) {
    for (auto& [chunk, done] : std::exchange(pending, {})) {
      if (ok)
        sent += chunk;
      done(ok);
    }
  }
};

}  // namespace

TEST_CASE("callback transport: an asynchronous write hands over a chunk once the last is done") {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  AsyncFramework framework;
  framework.attach(io, hub);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(hub.publish(draft("alice", std::to_string(i))));
  io.run_for(std::chrono::milliseconds(20));
  CHECK(framework.pending.size() == 1);  // one chunk at a time
  framework.finish_all();
  REQUIRE(test::run_until(io, [&] { return !framework.pending.empty(); }));
  CHECK(framework.pending.size() == 1);
  // What queued meanwhile comes as one chunk: one round trip, not one per event.
  CHECK(test::parse_sse(framework.pending.front().first).size() == 5);
  // Finished from another thread, as a framework's own loop would.
  while (test::parse_sse(framework.sent).size() < 6) {
    REQUIRE(test::run_until(io, [&] { return !framework.pending.empty(); }));
    std::thread([&] { framework.finish_all(); }).join();
  }
  const auto events = test::parse_sse(framework.sent);
  REQUIRE(events.size() == 6);
  CHECK(events[0].type == "init");
  for (int i = 0; i < 5; ++i)
    CHECK(events[i + 1].id == ids[i]);
  CHECK(hub.connection_count() == 1);
}

TEST_CASE("callback transport: an asynchronous write that is slow counts against the queue") {
  asio::io_context io;
  auto options = no_batching();
  options.queue.max_events = 8;
  options.queue.overflow = notify::OverflowPolicy::disconnect;
  notify::NotificationHub hub(io.get_executor(), options);
  AsyncFramework framework;
  framework.attach(io, hub);
  for (int i = 0; i < 10; ++i)  // while the first write waits: past the limit
    hub.publish(draft("alice"));
  REQUIRE(test::run_until(io, [&] {
    framework.finish_all();
    return hub.connection_count() == 0;
  }));
  CHECK(hub.metrics().slow_consumer_disconnects == 1);
  CHECK(framework.closes == 1);
  const auto events = test::parse_sse(framework.sent);
  REQUIRE_FALSE(events.empty());
  CHECK(events.front().type == "init");
  CHECK(events.size() == 1);  // what waited was dropped with the connection
}

TEST_CASE("callback transport: an asynchronous write that is never done is let go") {
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = std::chrono::seconds(1);
  notify::NotificationHub hub(io.get_executor(), options);
  AsyncFramework framework;
  framework.attach(io, hub);
  // Two sweeps find the write still waiting, without a byte moved.
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(hub.metrics().slow_consumer_disconnects == 1);
  CHECK(framework.closes == 1);
  framework.finish_all();  // too late: changes nothing
  io.run_for(std::chrono::milliseconds(20));
  CHECK(framework.pending.empty());
}

TEST_CASE("callback transport: done(false) closes the sink; a second done changes nothing") {
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  AsyncFramework framework;
  framework.attach(io, hub);
  auto first = std::move(framework.pending.front().second);
  framework.pending.clear();
  first(true);
  first(true);  // stray
  hub.publish(draft("alice"));
  REQUIRE(test::run_until(io, [&] { return !framework.pending.empty(); }));
  framework.finish_all(false);
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(framework.closes == 1);
  CHECK(hub.metrics().slow_consumer_disconnects == 0);
}
