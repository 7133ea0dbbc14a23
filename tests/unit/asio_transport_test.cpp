#include <notify/asio_transport.hpp>
#include <notify/batched_writes.hpp>

#include <notify/hub.hpp>
#include <notify/sse_sink.hpp>
#include <notify/websocket_sink.hpp>
#include <notify/store.hpp>

#include "fixtures.hpp"
#include "flush_lane.hpp"

#include <asio/connect.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using asio::ip::tcp;

namespace {

using test::draft;
using test::no_batching;
using test::SingleThreadMode;
using test::SocketPair;
using test::StrandMode;

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

TEST_CASE_TEMPLATE("asio transport: an SSE stream over a real loopback socket", Mode, StrandMode,
                   SingleThreadMode) {
  asio::io_context io;
  notify::HubOptions options;
  options.batch_window = std::chrono::milliseconds(0);
  notify::NotificationHub hub(io.get_executor(), options);
  SocketPair pair(io);
  Reader reader{pair.client, {}, false, {}};
  reader.start();

  auto transport = notify::make_asio_transport(std::move(pair.server), Mode::value);
  CHECK(transport->kind() == "tcp");
  CHECK(transport->single_threaded() == (Mode::value == notify::Threading::single));
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

namespace {

// A loopback connection whose two ends belong to different io_contexts.
std::pair<tcp::socket, tcp::socket> connect_across(asio::io_context& server_io,
                                                   asio::io_context& client_io) {
  tcp::acceptor acceptor(server_io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(client_io);
  client.connect(acceptor.local_endpoint());
  tcp::socket server(server_io);
  acceptor.accept(server);
  return {std::move(server), std::move(client)};
}

// The ids of the notification events in an SSE stream, in order.
std::vector<std::string> notification_ids(const std::string& stream) {
  std::vector<std::string> ids;
  for (const auto& e : test::parse_sse(stream))
    if (e.type == "notification")
      ids.push_back(e.id);
  return ids;
}

// How many whole notification events streams that only grow hold, counted by their `event:`
// line (a JSON data line holds no line break) up to the blank line that ends the last whole
// event, each byte scanned once: for conditions checked on every turn. Parsing 40 streams of
// 400 KB in full on every turn starved the writes waited for, on a loaded machine (and in a
// TSan build, whose string search is instrumented). An event whose `event:` line has come but
// not the rest is not counted: a wait that stopped there once found the last event cut short.
class GrowingStreamCounter {
 public:
  std::size_t count(const std::string& stream) {
    constexpr std::string_view line = "\nevent: notification\n";
    auto& [scanned, count] = seen_[&stream];
    const auto last_end = stream.rfind("\n\n");
    if (last_end == std::string::npos || last_end + 2 <= scanned)
      return count;
    const std::string_view whole(stream.data(), last_end + 2);
    // A line starting before `scanned` but ending after it was not counted yet.
    auto at = whole.find(line, scanned >= line.size() ? scanned - line.size() + 1 : 0);
    for (; at != std::string_view::npos; at = whole.find(line, at + 1))
      ++count;
    scanned = whole.size();
    return count;
  }

 private:
  std::map<const std::string*, std::pair<std::size_t, std::size_t>> seen_;
};

// Runs `io` until every reader has `count` notifications; false after 90 s (only a guard
// against a hang: the full-socket fan-out, 14 MB through 4 KiB buffers, took over 20 s under
// TSan beside another suite on two CPUs).
bool run_until_all_have(asio::io_context& io, const std::vector<std::unique_ptr<Reader>>& readers,
                        std::size_t count) {
  GrowingStreamCounter counter;
  return test::run_until(
      io,
      [&] {
        for (const auto& r : readers)
          if (counter.count(r->bytes) < count)
            return false;
        return true;
      },
      std::chrono::seconds(90));
}

// Runs `io` until every reader saw the end of its stream; false after 30 s.
bool run_until_all_closed(asio::io_context& io,
                          const std::vector<std::unique_ptr<Reader>>& readers) {
  return test::run_until(io, [&] {
    for (const auto& r : readers)
      if (!r->eof)
        return false;
    return true;
  });
}

// Runs `io` until every reader has its stream's first event; false after 20 s.
bool run_until_all_primed(asio::io_context& io,
                          const std::vector<std::unique_ptr<Reader>>& readers) {
  return test::run_until(
      io,
      [&] {
        for (const auto& r : readers)
          if (test::parse_sse(r->bytes).empty())
            return false;
        return true;
      },
      std::chrono::seconds(20));
}

// Picks, per subcase, how the flush task of `io` writes its connections (see
// batched_writes.hpp): one io_uring submission per pass, or one sendmsg() each.
bool choose_batched_writes(asio::io_context& io) {
  bool batched = true;
  SUBCASE("batched writes") {
    batched = true;
  }
  SUBCASE("a sendmsg per connection") {
    batched = false;
  }
  notify::set_batched_writes(io, batched);
  return batched;
}

// The writes that went through io_uring are those of the chosen way, where the kernel
// allows it.
void check_write_path(asio::io_context& io, bool batched) {
  if (batched && notify::batched_writes_supported()) {
    CHECK(notify::batched_write_count(io) > 0);
  } else {
    if (batched)
      MESSAGE("this kernel refuses io_uring: the batched subcase wrote with sendmsg()");
    CHECK(notify::batched_write_count(io) == 0);
  }
}

}  // namespace

TEST_CASE("asio transport, one thread: write_now writes at once and stops at a full socket") {
  asio::io_context io;
  SocketPair pair(io);
  pair.server.set_option(asio::socket_base::send_buffer_size(4096));
  pair.client.set_option(asio::socket_base::receive_buffer_size(4096));
  notify::AsioTransport<tcp::socket> transport(std::move(pair.server), notify::Threading::single);
  CHECK(transport.single_threaded());
  CHECK(transport.can_write_now());

  const std::string hello = "hello, ";
  const std::string world = "world";
  const asio::const_buffer two[] = {asio::buffer(hello), asio::buffer(world)};
  std::error_code ec;
  CHECK(transport.write_now(notify::BufferSpan{two, 2}, ec) == hello.size() + world.size());
  CHECK(!ec);
  std::string got(hello.size() + world.size(), '\0');
  asio::read(pair.client, asio::buffer(got));
  CHECK(got == "hello, world");

  // Nobody reads: the socket buffers fill and write_now says would_block, writing nothing.
  const std::string block(64 * 1024, 'x');
  const asio::const_buffer one[] = {asio::buffer(block)};
  std::size_t queued = 0;
  int calls = 0;
  for (; calls < 1000; ++calls) {
    const auto n = transport.write_now(notify::BufferSpan{one, 1}, ec);
    queued += n;
    if (ec)
      break;
    CHECK(n > 0);
  }
  CHECK(ec == asio::error::would_block);
  CHECK(calls < 1000);
  CHECK(queued > 0);

  // What was taken arrives whole.
  std::string drained(queued, '\0');
  asio::read(pair.client, asio::buffer(drained));
  CHECK(drained == std::string(queued, 'x'));

  // A closed peer is an error, not a would_block.
  pair.client.close();
  ec.clear();
  for (int i = 0; i < 100 && !ec; ++i) {
    transport.write_now(notify::BufferSpan{two, 2}, ec);
    if (ec == asio::error::would_block)
      ec.clear();
  }
  CHECK(ec);
  CHECK(ec != asio::error::would_block);
}

TEST_CASE("asio transport, one thread: a fan-out to full sockets arrives whole and in order") {
  asio::io_context io;
  const bool batched = choose_batched_writes(io);
  notify::NotificationHub hub(io.get_executor(), no_batching());
  constexpr int connections = 40;
  constexpr int first_wave = 60;
  constexpr int second_wave = 60;
  const std::string body(3000, 'b');  // 60 × ~3 KiB ≫ a 4 KiB socket buffer

  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < connections; ++i) {
    pairs.push_back(std::make_unique<SocketPair>(io));
    pairs.back()->server.set_option(asio::socket_base::send_buffer_size(4096));
    pairs.back()->client.set_option(asio::socket_base::receive_buffer_size(4096));
    readers.push_back(std::make_unique<Reader>(Reader{pairs.back()->client, {}, false, {}}));
    auto transport =
        notify::make_asio_transport(std::move(pairs.back()->server), notify::Threading::single);
    hub.attach("user" + std::to_string(i % 7), notify::SseSink::create(transport));
  }

  std::vector<std::string> published;
  auto publish = [&](int n) {
    for (int i = 0; i < n; ++i) {
      auto note = test::broadcast("b" + std::to_string(published.size()));
      note.body = body;
      published.push_back(hub.broadcast(std::move(note)));
    }
  };
  // Nobody reads yet: the first writes go out at once, then the sockets fill and the rest
  // waits in asynchronous writes. One event per turn of the io_context, so that the flush
  // task writes each (whole, in part, or not at all) while the sink is idle.
  io.restart();
  io.run_for(std::chrono::milliseconds(20));
  for (int i = 0; i < first_wave; ++i) {
    publish(1);
    io.restart();
    io.run_for(std::chrono::milliseconds(2));
  }
  for (auto& r : readers)
    r->start();
  publish(second_wave);

  REQUIRE(run_until_all_have(io, readers, published.size()));
  for (auto& r : readers) {
    CHECK(notification_ids(r->bytes) == published);
    const auto events = test::parse_sse(r->bytes);
    REQUIRE(!events.empty());
    CHECK(events.front().type == "init");
    CHECK(nlohmann::json::parse(events.back().data)["body"] == body);
  }
  const auto m = hub.metrics();
  CHECK(m.resyncs == 0);
  CHECK(m.events_delivered == static_cast<std::uint64_t>(connections) * (published.size() + 1));
  check_write_path(io, batched);
}

TEST_CASE("asio transport: a fan-out to hundreds of connections reaches each one, in order") {
  // More single-threaded sinks than the hub hands to their lane at once, mixed with strand
  // sinks (flushed by a handler each, no lane).
  asio::io_context io;
  const bool batched = choose_batched_writes(io);
  notify::NotificationHub hub(io.get_executor(), no_batching());
  constexpr int connections = 300;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::unique_ptr<Reader>> readers;
  for (int i = 0; i < connections; ++i) {
    pairs.push_back(std::make_unique<SocketPair>(io));
    readers.push_back(std::make_unique<Reader>(Reader{pairs.back()->client, {}, false, {}}));
    readers.back()->start();
    const auto threading = i % 3 == 2 ? notify::Threading::strand : notify::Threading::single;
    auto transport = notify::make_asio_transport(std::move(pairs.back()->server), threading);
    hub.attach("user" + std::to_string(i), notify::SseSink::create(transport));
  }
  REQUIRE(run_until_all_primed(io, readers));

  // One broadcast alone (one event per connection: the lane's batched write), then three
  // that cork (several events per connection: each sink's own sendmsg()).
  std::vector<std::string> published{hub.broadcast(test::broadcast("alone"))};
  REQUIRE(run_until_all_have(io, readers, published.size()));
  for (int i = 0; i < 3; ++i)
    published.push_back(hub.broadcast(test::broadcast("b" + std::to_string(i))));
  REQUIRE(run_until_all_have(io, readers, published.size()));
  for (auto& r : readers)
    CHECK(notification_ids(r->bytes) == published);
  CHECK(hub.metrics().events_delivered ==
        static_cast<std::uint64_t>(connections) * (published.size() + 1));
  check_write_path(io, batched);
}

TEST_CASE("asio transport, one thread: a fan-out to reset connections closes them and no other") {
  // A client that vanished with a reset makes its write fail (ECONNRESET or EPIPE), in a
  // batch or alone: that sink closes with the error, the others in the same pass go on.
  asio::io_context io;
  const bool batched = choose_batched_writes(io);
  notify::NotificationHub hub(io.get_executor(), no_batching());
  constexpr int connections = 90;  // more than one pass of the flush task
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<std::shared_ptr<notify::Sink>> sinks;
  for (int i = 0; i < connections; ++i) {
    pairs.push_back(std::make_unique<SocketPair>(io));
    readers.push_back(std::make_unique<Reader>(Reader{pairs.back()->client, {}, false, {}}));
    readers.back()->start();
    auto transport =
        notify::make_asio_transport(std::move(pairs.back()->server), notify::Threading::single);
    sinks.push_back(notify::SseSink::create(transport));
    hub.attach("user" + std::to_string(i), sinks.back());
  }
  REQUIRE(run_until_all_primed(io, readers));

  // Every third client resets its connection.
  for (int i = 0; i < connections; i += 3) {
    pairs[i]->client.set_option(asio::socket_base::linger(true, 0));
    pairs[i]->client.close();
  }
  std::vector<std::string> published;
  GrowingStreamCounter delivered;
  const auto closed_and_delivered = [&] {
    for (int i = 0; i < connections; ++i) {
      if (i % 3 == 0 ? sinks[i]->is_open() : delivered.count(readers[i]->bytes) < published.size())
        return false;
    }
    return true;
  };
  // The first write to a reset socket may still succeed; the next ones fail.
  for (int round = 0; round < 20 && !closed_and_delivered(); ++round) {
    published.push_back(hub.broadcast(test::broadcast("b" + std::to_string(round))));
    test::run_until(io, closed_and_delivered, std::chrono::milliseconds(200));
  }
  REQUIRE(closed_and_delivered());
  for (int i = 0; i < connections; ++i) {
    if (i % 3 != 0) {
      CHECK(sinks[i]->is_open());
      CHECK(notification_ids(readers[i]->bytes) == published);
    }
  }
  const auto m = hub.metrics();
  CHECK(m.connections_sse == static_cast<std::uint64_t>(connections - connections / 3));
  check_write_path(io, batched);
}

TEST_CASE(
    "asio transport, one thread: after fork() parent and child write with rings of their own") {
  // The lane's io_uring is memory shared with the kernel; a child that kept submitting to
  // its parent's ring would mix both processes' writes. After io_context::notify_fork()
  // each side writes its own connections at the same time, and each gets exactly its own.
  if (!notify::batched_writes_supported()) {
    MESSAGE("this kernel refuses io_uring: no ring to share after fork()");
    return;
  }
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  constexpr int per_side = 40;
  constexpr int rounds = 60;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::unique_ptr<Reader>> readers;
  const auto user = [](char side, int i) { return std::string(1, side) + std::to_string(i); };
  for (int i = 0; i < 2 * per_side; ++i) {
    pairs.push_back(std::make_unique<SocketPair>(io));
    readers.push_back(std::make_unique<Reader>(Reader{pairs.back()->client, {}, false, {}}));
    readers.back()->start();
    auto transport =
        notify::make_asio_transport(std::move(pairs.back()->server), notify::Threading::single);
    hub.attach(user(i < per_side ? 'p' : 'c', i % per_side), notify::SseSink::create(transport));
  }
  REQUIRE(run_until_all_primed(io, readers));
  // A first broadcast, so that the lane has its ring before fork().
  const auto first = hub.broadcast(test::broadcast("before fork"));
  REQUIRE(run_until_all_have(io, readers, 1));
  REQUIRE(notify::batched_write_count(io) > 0);

  // Publishes `rounds` notifications to each of its side's users and reads them back; true
  // when every one of its clients got exactly the first broadcast and its own, in order.
  const auto write_side = [&](char side) {
    const int offset = side == 'p' ? 0 : per_side;
    for (int i = 0; i < 2 * per_side; ++i) {  // the other side's clients are not ours
      if ((i < per_side) != (side == 'p'))
        readers[static_cast<std::size_t>(i)]->socket.close();
    }
    std::vector<std::vector<std::string>> expected(per_side, std::vector<std::string>{first});
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < per_side; ++i)
        expected[i].push_back(hub.publish(test::draft(user(side, i))));
      io.poll();
    }
    GrowingStreamCounter arrived;
    const auto all_read = [&] {
      for (int i = 0; i < per_side; ++i) {
        if (arrived.count(readers[static_cast<std::size_t>(offset + i)]->bytes) <
            expected[i].size())
          return false;
      }
      return true;
    };
    if (!test::run_until(io, all_read, std::chrono::seconds(20)))
      return false;
    for (int i = 0; i < per_side; ++i) {
      if (notification_ids(readers[static_cast<std::size_t>(offset + i)]->bytes) != expected[i])
        return false;
    }
    return notify::batched_write_count(io) > 0;
  };

  io.notify_fork(asio::execution_context::fork_prepare);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    io.notify_fork(asio::execution_context::fork_child);
    ::alarm(60);  // never outlive the test
    const bool ok = write_side('c');
    ::_exit(ok ? 0 : 1);
  }
  io.notify_fork(asio::execution_context::fork_parent);
  const bool parent_ok = write_side('p');
  int status = 0;
  pid_t reaped = 0;
  for (int waited_ms = 0; waited_ms < 60000 && reaped == 0; waited_ms += 10) {
    reaped = ::waitpid(child, &status, WNOHANG);
    if (reaped == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (reaped == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  CHECK(parent_ok);
  REQUIRE(reaped == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

// io_contexts each run by a thread of its own (lanes, as notify-demo --threads N gives them)
// and the clients of their connections on one io_context that the test runs.
struct ThreadedLanes {
  explicit ThreadedLanes(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
      lanes.push_back(std::make_unique<asio::io_context>(1));
  }
  ThreadedLanes(const ThreadedLanes&) = delete;
  ThreadedLanes& operator=(const ThreadedLanes&) = delete;
  ~ThreadedLanes() { join(); }

  // A client connected to lane `lane`, its server end attached to `hub` as `user`'s stream.
  void connect(notify::NotificationHub& hub, std::size_t lane, const std::string& user) {
    auto [server, client] = connect_across(*lanes[lane], clients);
    client_sockets.push_back(std::make_unique<tcp::socket>(std::move(client)));
    readers.push_back(std::make_unique<Reader>(Reader{*client_sockets.back(), {}, false, {}}));
    readers.back()->start();
    auto transport = notify::make_asio_transport(std::move(server), notify::Threading::single);
    hub.attach(user, notify::SseSink::create(transport));
  }

  void start() {
    for (auto& lane : lanes) {
      guards.push_back(asio::make_work_guard(*lane));
      runners.emplace_back([&context = *lane] { context.run(); });
    }
  }

  // Stops `hub`, runs the clients until their streams ended, and joins the lanes' threads.
  void finish(notify::NotificationHub& hub) {
    hub.stop();
    guards.clear();
    run_until_all_closed(clients, readers);
    join();
  }

  void join() {
    for (auto& lane : lanes)  // a sink that was never flushed would keep its lane running
      lane->stop();
    for (auto& runner : runners)
      if (runner.joinable())
        runner.join();
  }

  std::vector<std::unique_ptr<asio::io_context>> lanes;
  asio::io_context clients;
  std::vector<std::unique_ptr<tcp::socket>> client_sockets;
  std::vector<std::unique_ptr<Reader>> readers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::vector<std::thread> runners;
};

TEST_SUITE("concurrency") {
  TEST_CASE(
      "asio transport, one io_context per thread: fan-outs from several threads arrive in order") {
    ThreadedLanes lanes(2);
    notify::NotificationHub hub(lanes.lanes[0]->get_executor(), no_batching());
    constexpr int connections = 24;
    constexpr int publishers = 3;
    constexpr int per_publisher = 40;
    for (int i = 0; i < connections; ++i)
      lanes.connect(hub, static_cast<std::size_t>(i % 2), "user" + std::to_string(i % 5));
    lanes.start();

    std::mutex ids_mutex;
    std::vector<std::string> ids;
    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p) {
      threads.emplace_back([&, p] {
        for (int i = 0; i < per_publisher; ++i) {
          auto id = hub.broadcast(test::broadcast("p" + std::to_string(p)));
          std::lock_guard lock(ids_mutex);
          ids.push_back(std::move(id));
        }
      });
    }
    for (auto& t : threads)
      t.join();

    const auto total = static_cast<std::size_t>(publishers * per_publisher);
    const bool all_arrived = run_until_all_have(lanes.clients, lanes.readers, total);
    lanes.finish(hub);
    REQUIRE(all_arrived);

    // Every connection got every broadcast once, in id order (the order of the store).
    std::sort(ids.begin(), ids.end(), [](const std::string& a, const std::string& b) {
      return notify::parse_sequence(a) < notify::parse_sequence(b);
    });
    for (auto& r : lanes.readers)
      CHECK(notification_ids(r->bytes) == ids);
  }

  TEST_CASE(
      "asio transport, one io_context per thread: a fan-out over six lanes reaches every "
      "connection") {
    // notify-demo hands connections to its threads in turn, so a broadcast's loop alternates
    // lanes; its FlushLane::Batch keeps a chunk per lane. Six lanes, and more connections per
    // lane than one chunk.
    constexpr std::size_t lane_count = 6;
    constexpr std::size_t per_lane = notify::detail::FlushLane::Batch::chunk + 22;
    ThreadedLanes lanes(lane_count);
    notify::NotificationHub hub(lanes.lanes[0]->get_executor(), no_batching());
    for (std::size_t i = 0; i < lane_count * per_lane; ++i)
      lanes.connect(hub, i % lane_count, "user" + std::to_string(i));
    lanes.start();
    // Every init written first: a sink whose init still waits for its flush takes the
    // broadcasts into the same write, and the broadcast's loop hands nothing to its lane.
    const bool all_primed = run_until_all_primed(lanes.clients, lanes.readers);

    std::vector<std::string> ids;
    for (int i = 0; i < 3 && all_primed; ++i)
      ids.push_back(hub.broadcast(test::broadcast("b" + std::to_string(i))));
    const bool all_arrived = run_until_all_have(lanes.clients, lanes.readers, ids.size());
    lanes.finish(hub);
    REQUIRE(all_primed);
    REQUIRE(all_arrived);
    for (auto& r : lanes.readers)
      CHECK(notification_ids(r->bytes) == ids);
  }
}

TEST_CASE_TEMPLATE("asio transport: a connection the hub refuses is answered in HTTP by refuse()",
                   Mode, StrandMode, SingleThreadMode) {
  asio::io_context io;
  auto options = no_batching();
  options.max_connections_per_user = 1;
  notify::NotificationHub hub(io.get_executor(), options);
  SocketPair first(io);
  hub.attach("alice", notify::SseSink::create(
                          notify::make_asio_transport(std::move(first.server), Mode::value)));
  for (const bool websocket : {false, true}) {
    CAPTURE(websocket);
    SocketPair pair(io);
    auto transport = notify::make_asio_transport(std::move(pair.server), Mode::value);
    std::shared_ptr<notify::Sink> sink;
    if (websocket) {
      notify::WebSocketOptions ws;
      ws.handshake_response = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
      sink = notify::WebSocketSink::create(transport, ws);
    } else {
      sink = notify::SseSink::create(transport);
    }
    std::error_code ec;
    hub.attach("alice", sink, {}, ec);
    CHECK(ec == notify::errc::too_many_user_connections);
    sink->refuse(ec);
    Reader reader{pair.client, {}, false, {}};
    reader.start();
    REQUIRE(test::run_until(io, [&] { return reader.eof; }));
    // Not the stream's head nor the 101: an error an EventSource does not retry.
    CHECK(reader.bytes.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0) == 0);
    CHECK(reader.bytes.find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(reader.bytes.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
    const auto body = reader.bytes.substr(reader.bytes.find("\r\n\r\n") + 4);
    CHECK(nlohmann::json::parse(body).at("error") == ec.message());
    CHECK_FALSE(sink->is_open());
  }
  CHECK(hub.connection_count() == 1);
  CHECK(notify::Sink::refusal_response(notify::errc::hub_stopped).find("Retry-After: ") !=
        std::string::npos);
}

TEST_CASE("asio transport: a sink closed before attach is refused, not kept") {
  asio::io_context io;
  auto options = no_batching();
  options.max_connections_per_user = 1;
  notify::NotificationHub hub(io.get_executor(), options);
  for (const bool ended : {false, true}) {
    CAPTURE(ended);
    SocketPair pair(io);
    auto sink = notify::SseSink::create(notify::make_asio_transport(std::move(pair.server)));
    if (ended)
      sink->end_session("token_expired");  // a host that refused it, then attached anyway
    else
      sink->close();
    io.run_for(std::chrono::milliseconds(20));  // the close completes (or not): either way
    std::error_code ec;
    hub.attach("alice", sink, {}, ec);
    CHECK(ec == notify::errc::connection_closed);
    CHECK(hub.connection_count("alice") == 0);
  }
  // The user's one slot is still free.
  SocketPair pair(io);
  std::error_code ec;
  hub.attach("alice", notify::SseSink::create(notify::make_asio_transport(std::move(pair.server))),
             {}, ec);
  CHECK_FALSE(ec);
}

TEST_CASE("asio transport: the kind is the transport's own copy; extra headers are checked") {
  asio::io_context io;
  SocketPair pair(io);
  std::shared_ptr<notify::AsioTransport<tcp::socket>> transport;
  {
    const std::string region = "eu-west-1-zone-b-rack-7";  // past the small-string buffer
    transport = std::make_shared<notify::AsioTransport<tcp::socket>>(
        std::move(pair.server), notify::Threading::strand, "tcp/" + region);
  }
  CHECK(transport->kind() == "tcp/eu-west-1-zone-b-rack-7");
  for (const std::string bad : {"X-A: 1", "X-A: 1\r\n\r\nINJECTED", "X-A: 1\nX-B: 2\r\n",
                                "X A: 1\r\n", ": 1\r\n", "X-A 1\r\n"}) {
    CAPTURE(bad);
    notify::SseOptions sse;
    sse.extra_headers = bad;
    CHECK_THROWS_AS(notify::SseSink::create(transport, sse), std::invalid_argument);
  }
  notify::SseOptions sse;
  sse.extra_headers = "X-Accel-Buffering: no\r\nX-Region:\teu\r\n";
  CHECK_NOTHROW(notify::SseSink::create(transport, sse));
}

TEST_CASE("asio transport: input_waiting says whether the client's bytes wait unread") {
  asio::io_context io;
  SocketPair pair(io);
  auto transport = notify::make_asio_transport(std::move(pair.server));
  CHECK_FALSE(transport->input_waiting());
  asio::write(pair.client, asio::buffer(std::string("pong")));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!transport->input_waiting() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(transport->input_waiting());
  std::array<char, 16> buffer{};
  std::error_code ec;
  CHECK(transport->read_now(asio::buffer(buffer), ec) == 4);
  CHECK_FALSE(transport->input_waiting());
}
