#include <notify/websocket_sink.hpp>

#include <notify/asio_transport.hpp>
#include <notify/hub.hpp>
#include <notify/ws_deflate.hpp>

#include "fixtures.hpp"
#include "forwarding_store.hpp"
#include "ws_test_support.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <thread>

using asio::ip::tcp;
using nlohmann::json;
using notify::ws::Opcode;

namespace {

using test::draft;
using test::no_batching;
using test::SingleThreadMode;
using test::SocketPair;
using test::StrandMode;

using test::ws::Frame;

// Every case runs over both kinds of AsioTransport: with a strand (reads into the sink's
// own buffer) and single-threaded (non-blocking reads into the thread's shared buffer).
notify::Threading server_threading = notify::Threading::strand;
struct UseThreading {
  explicit UseThreading(notify::Threading t) { server_threading = t; }
  ~UseThreading() { server_threading = notify::Threading::strand; }
};

bool is_heartbeat(std::string_view payload) {
  return payload.rfind(R"({"type":"heartbeat")", 0) == 0;
}

// A WebSocket client over a real loopback socket: masked frames out, server frames in.
struct WsClient {
  asio::io_context& io;
  tcp::socket socket;
  std::shared_ptr<notify::WebSocketSink> sink;
  std::string bytes;
  bool eof = false;
  std::array<char, 4096> buffer{};

  // `hub` null: the sink is not attached.
  WsClient(asio::io_context& io_, notify::NotificationHub* hub, const std::string& user,
           notify::WebSocketOptions options = {})
      : io(io_), socket(io_) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    socket.connect(acceptor.local_endpoint());
    tcp::socket server(io);
    acceptor.accept(server);
    options.handshake_response = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
    options.close_linger = std::chrono::milliseconds(300);  // this client never closes first
    sink = notify::WebSocketSink::create(
        notify::make_asio_transport(std::move(server), server_threading), options);
    if (hub)
      hub->attach(user, sink);
    read();
  }
  WsClient(asio::io_context& io_, notify::NotificationHub& hub, const std::string& user,
           notify::WebSocketOptions options = {})
      : WsClient(io_, &hub, user, std::move(options)) {}

  void read() {
    socket.async_read_some(asio::buffer(buffer), [this](std::error_code ec, std::size_t n) {
      if (ec) {
        eof = true;
        return;
      }
      bytes.append(buffer.data(), n);
      read();
    });
  }

  void send(const std::string& raw) { asio::write(socket, asio::buffer(raw)); }
  void send_text(const std::string& text) { send(test::ws::client_frame(Opcode::text, text)); }

  // The server frames received so far (after the handshake response).
  std::vector<Frame> frames() const { return test::ws::server_frames(bytes); }

  // The text messages but heartbeats (a test with a short interval may meet one).
  std::vector<json> messages() const {
    std::vector<json> out;
    for (const auto& f : frames())
      if (f.opcode == Opcode::text && !f.rsv1 && !is_heartbeat(f.payload))
        out.push_back(json::parse(f.payload));
    return out;
  }

  std::optional<std::uint16_t> close_code() const {
    for (const auto& f : frames())
      if (f.opcode == Opcode::close && f.payload.size() >= 2)
        return static_cast<std::uint16_t>((static_cast<std::uint8_t>(f.payload[0]) << 8) |
                                          static_cast<std::uint8_t>(f.payload[1]));
    return std::nullopt;
  }

  std::string close_reason() const {
    for (const auto& f : frames())
      if (f.opcode == Opcode::close && f.payload.size() >= 2)
        return f.payload.substr(2);
    return {};
  }
};

// Attaches alice's WebSocket sink, its handshake taken as answered, to `server`.
void attach_raw_ws(notify::NotificationHub& hub, tcp::socket server,
                   notify::WebSocketOptions options = {}) {
  options.handshake_response = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
  hub.attach("alice",
             notify::WebSocketSink::create(
                 notify::make_asio_transport(std::move(server), server_threading), options));
}

}  // namespace

TEST_CASE_TEMPLATE("websocket sink: init, then notifications as text frames with their id", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  const auto before = hub.publish(draft("alice", "before"));
  WsClient c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
  CHECK(c.bytes.rfind("HTTP/1.1 101 Switching Protocols\r\n\r\n", 0) == 0);
  auto init = c.messages()[0];
  CHECK(init["type"] == "init");
  CHECK(init["id"] == before);
  CHECK(init["data"]["unreadCount"] == 1);
  const auto id = hub.publish(draft("alice", "live"));
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 2; }));
  auto n = c.messages()[1];
  CHECK(n["type"] == "notification");
  CHECK(n["id"] == id);
  CHECK(n["data"]["title"] == "live");
  CHECK(hub.metrics().connections_websocket == 1);
  CHECK(hub.metrics_text().find("notify_connections{protocol=\"websocket\"} 1") !=
        std::string::npos);
}

TEST_CASE_TEMPLATE(
    "websocket sink: read receipts from the socket sync the user's other connections", Mode,
    StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  WsClient tab1(io, hub, "alice"), tab2(io, hub, "alice");
  const auto id = hub.publish(draft("alice", "x"));
  hub.publish(draft("alice", "y"));
  REQUIRE(test::run_until(io, [&] { return tab2.messages().size() == 3; }));
  tab1.send_text(json{{"type", "notification:read"}, {"id", id}}.dump());
  REQUIRE(test::run_until(io, [&] { return tab2.messages().size() == 4; }));
  auto read = tab2.messages()[3];
  CHECK(read["type"] == "notification:read");
  CHECK(read["data"]["ids"] == json::array({id}));
  CHECK(read["data"]["unreadCount"] == 1);
  tab2.send_text(R"({"type":"notifications:read_all"})");
  REQUIRE(test::run_until(io, [&] { return tab1.messages().size() == 5; }));
  CHECK(tab1.messages()[4]["data"]["unreadCount"] == 0);
  CHECK(hub.unread_count("alice") == 0);
}

namespace {
// Remembers the thread of its last read-state change.
class ReadThreadStore final : public test::ForwardingStore {
 public:
  notify::ReadResult mark_all_read(std::string_view user) override {
    thread = std::this_thread::get_id();
    return ForwardingStore::mark_all_read(user);
  }
  std::atomic<std::thread::id> thread{};
};
}  // namespace

// With a store that may block, a receipt must not hold the connection's thread (here the
// test's, which runs `io`) for the store's write.
TEST_CASE(
    "websocket sink: with a store that may block, a receipt is written off the socket's thread") {
  asio::io_context io;
  auto store = std::make_shared<ReadThreadStore>();
  notify::NotificationHub hub(io.get_executor(), no_batching(), store);
  WsClient tab1(io, hub, "alice"), tab2(io, hub, "alice");
  // Their `init` is read on the store thread: published before it, "x" would be in it.
  REQUIRE(test::run_until(
      io, [&] { return tab1.messages().size() == 1 && tab2.messages().size() == 1; }));
  hub.publish(draft("alice", "x"));
  REQUIRE(test::run_until(io, [&] { return tab1.messages().size() == 2; }));
  tab2.send_text(R"({"type":"notifications:read_all"})");
  REQUIRE(test::run_until(io, [&] { return tab1.messages().size() == 3; }));
  CHECK(tab1.messages()[2]["type"] == "notification:read");
  CHECK(tab1.messages()[2]["data"]["unreadCount"] == 0);
  CHECK(store->thread.load() != std::thread::id{});
  CHECK(store->thread.load() != std::this_thread::get_id());
  hub.stop();
}

TEST_CASE_TEMPLATE("websocket sink: a connection the store cannot prime is closed with 1013", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto store = std::make_shared<test::FailingReadsStore>();
  notify::NotificationHub hub(io.get_executor(), no_batching(), store);
  hub.set_error_handler([](std::string_view) {});
  WsClient c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.eof; }));
  CHECK(c.bytes.rfind("HTTP/1.1 101 ", 0) == 0);  // the handshake completes, then the close
  CHECK(c.messages().empty());
  CHECK(c.close_code() == 1013);  // try again later
  CHECK(hub.connection_count() == 0);
  CHECK(hub.metrics().handler_errors == 1);

  store->failing = false;
  WsClient again(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return again.messages().size() == 1; }));
  CHECK(again.messages()[0]["type"] == "init");
  hub.stop();
}

TEST_CASE_TEMPLATE("websocket sink: end_sessions sends session:end, then closes with 4401", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  notify::WebSocketOptions deflate;
  deflate.deflate.emplace();
  WsClient plain(io, hub, "alice"), compressed(io, hub, "alice", deflate), other(io, hub, "bob");
  REQUIRE(test::run_until(io, [&] {
    return plain.messages().size() == 1 && compressed.messages().size() == 1 &&
           other.messages().size() == 1;
  }));
  hub.end_sessions("alice", "logged_out");
  REQUIRE(test::run_until(io, [&] { return plain.eof && compressed.eof; }));
  for (auto* c : {&plain, &compressed}) {
    const auto messages = c->messages();
    REQUIRE(messages.size() == 2);
    CHECK(messages[1] == json{{"type", "session:end"}, {"data", {{"reason", "logged_out"}}}});
    CHECK(c->close_code() == 4401);
    CHECK(c->close_reason() == "logged_out");
    CHECK(c->frames().back().opcode == Opcode::close);  // nothing after the close
  }
  CHECK(hub.connection_count() == 1);
  CHECK(hub.metrics().sessions_ended == 2);
  hub.publish(draft("bob"));
  REQUIRE(test::run_until(io, [&] { return other.messages().size() == 2; }));
  CHECK_FALSE(other.eof);
  hub.stop();
}

TEST_CASE_TEMPLATE("websocket sink: end_session before attach answers the handshake, then 4401",
                   Mode, StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  WsClient c(io, nullptr, "alice");
  c.sink->end_session("token_expired");
  REQUIRE(test::run_until(io, [&] { return c.eof; }));
  CHECK(c.bytes.rfind("HTTP/1.1 101 ", 0) == 0);
  REQUIRE(c.messages().size() == 1);
  CHECK(c.messages()[0] == json{{"type", "session:end"}, {"data", {{"reason", "token_expired"}}}});
  CHECK(c.close_code() == 4401);
  CHECK(c.close_reason() == "token_expired");
}

TEST_CASE_TEMPLATE("websocket sink: bad messages get an error and the connection stays", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  WsClient c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
  c.send_text("{not json");
  c.send_text(R"({"type":"launch-rockets"})");
  c.send_text(R"([1,2])");
  c.send_text(R"({"type":"notification:read"})");
  auto nested = [](std::size_t arrays) {
    return R"({"type":"launch-rockets","x":)" + std::string(arrays, '[') +
           std::string(arrays, ']') + "}";
  };
  c.send_text(nested(63));          // 64 levels with the message itself
  c.send_text(nested(64));          // 65
  c.send_text(nested(400 * 1000));  // a handler copying this would exhaust the stack
  // A "ref" comes back with the error that answers its message (a string or an integer);
  // any other is left out, the message answered as without it.
  c.send_text(R"({"type":"launch-rockets","ref":"tab-1.7"})");
  c.send_text(R"({"type":"notification:read","ref":12})");
  c.send_text(R"({"type":"launch-rockets","ref":{"x":1}})");
  c.send_text(R"({"type":"launch-rockets","ref":")" + std::string(129, 'r') + R"("})");
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 12; }));
  auto m = c.messages();
  CHECK(m[1] == json{{"type", "error"}, {"data", {{"message", "invalid JSON"}}}});
  CHECK(m[2]["data"]["message"] == "unknown message type 'launch-rockets'");
  CHECK(m[3]["data"]["message"] == "a message must be a JSON object");
  CHECK(m[4]["data"]["message"] == "id: missing");
  CHECK(m[5]["data"]["message"] == "unknown message type 'launch-rockets'");
  CHECK(m[6]["data"]["message"] == "a message must not nest deeper than 64 levels");
  CHECK(m[7]["data"]["message"] == "a message must not nest deeper than 64 levels");
  CHECK(m[8]["data"] == json{{"message", "unknown message type 'launch-rockets'"},
                             {"type", "launch-rockets"},
                             {"ref", "tab-1.7"}});
  CHECK(m[9]["data"] ==
        json{{"message", "id: missing"}, {"type", "notification:read"}, {"ref", 12}});
  CHECK_FALSE(m[10]["data"].contains("ref"));
  CHECK_FALSE(m[11]["data"].contains("ref"));
  CHECK(m[11]["data"]["type"] == "launch-rockets");
  hub.publish(draft("alice", "still here"));
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 13; }));
  CHECK(hub.connection_count() == 1);
}

TEST_CASE_TEMPLATE("websocket sink: a heartbeat is a ping and a message the page can see", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = std::chrono::seconds(1);
  notify::NotificationHub hub(io.get_executor(), options);
  WsClient c(io, hub, "alice");
  const auto heartbeat = [&] {
    const auto frames = c.frames();
    for (std::size_t i = 0; i + 1 < frames.size(); ++i)
      if (frames[i].opcode == Opcode::ping && frames[i + 1].opcode == Opcode::text &&
          is_heartbeat(frames[i + 1].payload))
        return std::optional<json>(json::parse(frames[i + 1].payload));
    return std::optional<json>();
  };
  REQUIRE(test::run_until(
      io, [&] { return heartbeat().has_value(); }, std::chrono::seconds(5)));
  CHECK(*heartbeat() == json{{"type", "heartbeat"}, {"data", json::object()}});
  REQUIRE_FALSE(c.messages().empty());
  CHECK(c.messages()[0]["data"]["heartbeatMs"] == 1000);
}

TEST_CASE_TEMPLATE(
    "websocket sink: a client silent for two sweeps is closed, but not by a sweep that came late",
    Mode, StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = std::chrono::seconds(1);
  notify::NotificationHub hub(io.get_executor(), options);
  WsClient c(io, hub, "alice");  // answers no ping
  const auto pings = [&] {
    std::size_t n = 0;
    for (const auto& f : c.frames())
      n += f.opcode == Opcode::ping ? 1 : 0;
    return n;
  };
  REQUIRE(test::run_until(
      io, [&] { return pings() == 1; }, std::chrono::seconds(10)));
  // The process is held up past the next sweep (a machine swapping, a debugger): the late
  // sweep cannot tell a silent client from a pong it has not read, and closes nobody.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  io.run_for(std::chrono::milliseconds(300));
  CHECK_FALSE(c.close_code().has_value());
  CHECK(hub.connection_count() == 1);
  // On time again, the silence counts: closed with 1001.
  REQUIRE(test::run_until(
      io, [&] { return c.eof; }, std::chrono::seconds(10)));
  CHECK(c.close_code() == 1001);
  CHECK(c.close_reason() == "ping timeout");
}

TEST_CASE_TEMPLATE("websocket sink: ping gets a pong with the same payload", Mode, StrandMode,
                   SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  WsClient c(io, hub, "alice");
  c.send(test::ws::client_frame(Opcode::ping, "are you there"));
  REQUIRE(test::run_until(io, [&] {
    for (const auto& f : c.frames())
      if (f.opcode == Opcode::pong)
        return f.payload == "are you there";
    return false;
  }));
}

TEST_CASE_TEMPLATE("websocket sink: protocol violations close with the RFC's code", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  struct Row {
    const char* what;
    std::string bytes;
    std::uint16_t code;
  };
  std::string unmasked = "\x81\x02hi";
  const Row rows[] = {
      {"unmasked frame", unmasked, 1002},
      {"reserved opcode", test::ws::client_frame(0x83, "x"), 1002},
      {"invalid UTF-8", test::ws::client_frame(Opcode::text, "\xC3\x28"), 1007},
      {"binary message", test::ws::client_frame(Opcode::binary, "\x01\x02"), 1003},
      {"too big", test::ws::client_frame(Opcode::text, std::string(2048, 'a')), 1009},
  };
  for (const auto& row : rows) {
    CAPTURE(row.what);
    asio::io_context io;
    notify::NotificationHub hub(io.get_executor(), no_batching());
    notify::WebSocketOptions options;
    options.limits.max_message_bytes = 1024;
    WsClient c(io, hub, "alice", options);
    REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
    c.send(row.bytes);
    REQUIRE(test::run_until(io, [&] { return c.eof; }));
    CHECK(c.close_code() == row.code);
    REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  }
}

TEST_CASE_TEMPLATE("websocket sink: the close handshake is echoed", Mode, StrandMode,
                   SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  WsClient c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
  c.send(test::ws::client_frame(Opcode::close, test::ws::close_payload(4000, "bye")));
  REQUIRE(test::run_until(io, [&] { return c.eof; }));
  CHECK(c.close_code() == 4000);
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
}

TEST_CASE_TEMPLATE("websocket sink: a flood of messages closes with 1008", Mode, StrandMode,
                   SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  notify::WebSocketOptions options;
  options.messages_per_second = 5;
  options.message_burst = 10;
  WsClient c(io, hub, "alice", options);
  std::string flood;
  for (int i = 0; i < 50; ++i)
    flood += test::ws::client_frame(Opcode::text, R"({"type":"x"})");
  c.send(flood);
  REQUIRE(test::run_until(io, [&] { return c.eof; }));
  CHECK(c.close_code() == 1008);
}

TEST_CASE_TEMPLATE("websocket sink: stop closes with 1001 going away", Mode, StrandMode,
                   SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  WsClient c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
  hub.stop();
  REQUIRE(test::run_until(io, [&] { return c.eof; }));
  CHECK(c.close_code() == 1001);
}

TEST_CASE_TEMPLATE("websocket sink: permessage-deflate compresses large events once for all", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  notify::WebSocketOptions options;
  options.deflate = notify::ws::DeflateParams{};
  WsClient a(io, hub, "alice", options), b(io, hub, "alice", options);
  auto n = draft("alice", "big");
  n.body = std::string(4000, 'z');
  hub.publish(n);
  auto compressed = [](const WsClient& c) -> std::optional<Frame> {
    for (const auto& f : c.frames())
      if (f.rsv1)
        return f;
    return std::nullopt;
  };
  REQUIRE(test::run_until(io, [&] { return compressed(a) && compressed(b); }));
  const auto fa = *compressed(a);
  CHECK(fa.payload == compressed(b)->payload);  // the same bytes: encoded once
  CHECK(fa.payload.size() < 1000);
  notify::ws::Inflater inflater;
  std::string text;
  REQUIRE(inflater.inflate(fa.payload, text, 1 << 20) == notify::ws::Inflater::Status::ok);
  REQUIRE(inflater.finish_message(text, 1 << 20) == notify::ws::Inflater::Status::ok);
  auto message = json::parse(text);
  CHECK(message["type"] == "notification");
  CHECK(message["data"]["body"] == n.body);
}

TEST_CASE_TEMPLATE("websocket sink: host handlers and ephemeral events (typing relay)", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  hub.on_message("typing", [&](const notify::ClientMessage& m) {
    if (!m.body.contains("to")) {
      notify::NotificationHub::reply_error(m, "to: missing");
      return;
    }
    hub.send_to(m.body["to"].get<std::string>(), "typing",
                {{"from", m.user}, {"context", m.body.value("context", "")}});
  });
  CHECK_THROWS_AS(hub.on_message("notification:read", [](const notify::ClientMessage&) {}),
                  std::invalid_argument);
  WsClient alice(io, hub, "alice"), bob(io, hub, "bob"), carol(io, hub, "carol");
  REQUIRE(test::run_until(io, [&] {
    return alice.messages().size() == 1 && bob.messages().size() == 1 &&
           carol.messages().size() == 1;
  }));
  alice.send_text(R"({"type":"typing","to":"bob","context":"chat-1"})");
  alice.send_text(R"({"type":"typing","ref":"r1"})");
  REQUIRE(test::run_until(io, [&] { return bob.messages().size() == 2; }));
  CHECK(bob.messages()[1] ==
        json{{"type", "typing"}, {"data", {{"from", "alice"}, {"context", "chat-1"}}}});
  REQUIRE(test::run_until(io, [&] { return alice.messages().size() == 2; }));
  CHECK(alice.messages()[1] ==
        json{{"type", "error"},
             {"data", {{"message", "to: missing"}, {"type", "typing"}, {"ref", "r1"}}}});
  io.run_for(std::chrono::milliseconds(30));
  CHECK(carol.messages().size() == 1);
  CHECK(hub.metrics().client_messages == 2);

  // A handler that throws what is not a std::exception: answered and reported, and nothing
  // leaves the io_context's run().
  hub.on_message("odd", [](const notify::ClientMessage&) { throw 42; });
  const auto errors = hub.metrics().handler_errors;
  alice.send_text(R"({"type":"odd","ref":7})");
  REQUIRE(test::run_until(io, [&] { return alice.messages().size() == 3; }));
  CHECK(alice.messages()[2]["data"] ==
        json{{"message", "the message could not be handled"}, {"type", "odd"}, {"ref", 7}});
  CHECK(hub.metrics().handler_errors == errors + 1);
}

TEST_CASE_TEMPLATE(
    "websocket sink: what the client was sent before its close arrives before the "
    "close",
    Mode, StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  WsClient c(io, hub, "alice");
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
  // One write, so that the server reads all of it at once: a message that gets a reply, a
  // ping, then the close.
  c.send(test::ws::client_frame(Opcode::text, "{not json") +
         test::ws::client_frame(Opcode::ping, "still there?") +
         test::ws::client_frame(Opcode::close, test::ws::close_payload(1000)));
  REQUIRE(test::run_until(io, [&] { return c.eof; }));
  const auto frames = c.frames();
  REQUIRE(frames.size() == 4);  // init, the reply, the pong, the close
  CHECK(json::parse(frames[1].payload)["data"]["message"] == "invalid JSON");
  CHECK(frames[2].opcode == Opcode::pong);
  CHECK(frames[2].payload == "still there?");
  CHECK(frames[3].opcode == Opcode::close);
  CHECK(c.close_code() == 1000);
}

TEST_CASE_TEMPLATE("websocket sink: a protocol error closes after the answers to what came before",
                   Mode, StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), no_batching());
  notify::WebSocketOptions options;
  options.message_burst = 3;
  WsClient c(io, hub, "alice", options);
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 1; }));
  SUBCASE("more messages than the rate allows") {
    std::string burst;
    for (int i = 0; i < 4; ++i)
      burst += test::ws::client_frame(Opcode::text, R"({"type":"x"})");
    c.send(burst);
    REQUIRE(test::run_until(io, [&] { return c.eof; }));
    CHECK(c.messages().size() == 4);  // init and three replies: the fourth message is refused
    CHECK(c.close_code() == 1008);
  }
  SUBCASE("invalid UTF-8 after a ping") {
    c.send(test::ws::client_frame(Opcode::ping, "p") +
           test::ws::client_frame(Opcode::text, "\xC3\x28"));
    REQUIRE(test::run_until(io, [&] { return c.eof; }));
    const auto frames = c.frames();
    REQUIRE(frames.size() == 3);
    CHECK(frames[1].opcode == Opcode::pong);
    CHECK(c.close_code() == 1007);
    CHECK(c.close_reason() == "invalid UTF-8 or compressed data");
  }
}

TEST_CASE_TEMPLATE("websocket sink: a client that pings without reading the pongs is closed", Mode,
                   StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto options = no_batching();
  options.queue.max_events = 64;
  notify::NotificationHub hub(io.get_executor(), options);
  SocketPair pair(io, 4096);
  auto& client = pair.client;
  notify::WebSocketOptions ws_options;
  ws_options.close_linger = std::chrono::seconds(20);  // reads on while the client writes
  attach_raw_ws(hub, std::move(pair.server), ws_options);
  // 20,000 pings (2.5 MB of pongs) while reading nothing: the server takes them all, and
  // without a bound would keep every pong.
  constexpr int pings = 20000;
  std::string flood;
  for (int i = 0; i < pings; ++i)
    flood += test::ws::client_frame(Opcode::ping, std::string(125, 'p'));
  bool sent = false;
  asio::async_write(client, asio::buffer(flood), [&](std::error_code ec, std::size_t) {
    CHECK_FALSE(ec);
    sent = true;
  });
  REQUIRE(test::run_until(io, [&] { return sent; }));
  // Then it reads: some pongs, the close that says why, the end.
  std::string bytes;
  bool eof = false;
  std::array<char, 65536> buffer{};
  std::function<void()> read = [&] {
    client.async_read_some(asio::buffer(buffer), [&](std::error_code ec, std::size_t n) {
      if (ec) {
        eof = true;
        return;
      }
      bytes.append(buffer.data(), n);
      read();
    });
  };
  read();
  REQUIRE(test::run_until(io, [&] { return eof && hub.connection_count() == 0; }));
  const auto frames = test::ws::server_frames(bytes);
  REQUIRE_FALSE(frames.empty());
  std::size_t pongs = 0;
  for (const auto& f : frames)
    pongs += f.opcode == Opcode::pong ? 1 : 0;
  CHECK(pongs < pings / 10);
  CHECK(frames.back().opcode == Opcode::close);
  CHECK(frames.back().payload.substr(0, 2) == "\x03\xf0");  // 1008
  CHECK(hub.metrics().slow_consumer_disconnects == 1);
}

TEST_CASE_TEMPLATE("websocket sink: a client that reads nothing at all is let go", Mode, StrandMode,
                   SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = std::chrono::seconds(1);  // the least allowed
  notify::NotificationHub hub(io.get_executor(), options);
  SocketPair pair(io, 4096);
  notify::WebSocketOptions ws_options;
  ws_options.close_linger = std::chrono::milliseconds(300);
  attach_raw_ws(hub, std::move(pair.server), ws_options);
  // Enough to fill both socket buffers, well within the queue's limits: a write waits.
  for (int i = 0; i < 20; ++i) {
    auto n = draft("alice", "big");
    n.body = std::string(16 * 1024, 'b');
    hub.publish(n);
  }
  // Two sweeps find that write still waiting: the connection goes (a close frame would only
  // wait behind it, as the ping timeout's did).
  REQUIRE(test::run_until(io, [&] { return hub.connection_count() == 0; }));
  CHECK(hub.metrics().slow_consumer_disconnects == 1);
}

TEST_CASE_TEMPLATE("websocket sink: a client that reads slowly is not let go", Mode, StrandMode,
                   SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto options = no_batching();
  options.heartbeat_interval = std::chrono::seconds(2);  // slack for a loaded machine
  notify::NotificationHub hub(io.get_executor(), options);
  SocketPair pair(io, 4096);
  attach_raw_ws(hub, std::move(pair.server));
  // 256 KiB, read a little every 10 ms: one write that takes seconds (several sweeps) and moves
  // all the while.
  constexpr int events = 32;
  for (int i = 0; i < events; ++i) {
    auto n = draft("alice", "slow " + std::to_string(i));
    n.body = std::string(8 * 1024, 's');
    hub.publish(n);
  }
  // The client reads on a thread of its own, as a remote one would: a test thread held up
  // on a loaded machine would otherwise stop the reading and the hub's sweep together.
  const auto messages = [](const std::string& bytes) {
    std::size_t count = 0;
    for (const auto& f : test::ws::server_frames(bytes))
      count += f.opcode == Opcode::text && !is_heartbeat(f.payload) ? 1 : 0;
    return count;
  };
  std::atomic<bool> done{false};
  std::string bytes;
  bool eof = false;
  std::thread reader([&] {
    std::array<char, 2048> buffer{};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (messages(bytes) < events + 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::error_code ec;
      const auto n = pair.client.read_some(asio::buffer(buffer), ec);
      if (ec) {
        eof = true;
        break;
      }
      bytes.append(buffer.data(), n);
    }
    done = true;
  });
  const bool finished = test::run_until(
      io, [&] { return done.load(); }, std::chrono::seconds(70));
  if (!finished) {  // a read that would block for good ends here
    std::error_code ignored;
    pair.client.shutdown(tcp::socket::shutdown_both, ignored);
  }
  reader.join();
  REQUIRE(finished);
  CHECK_FALSE(eof);
  CHECK(messages(bytes) == events + 1);  // init and every notification
  CHECK(hub.connection_count() == 1);
  CHECK(hub.metrics().slow_consumer_disconnects == 0);
}

TEST_CASE_TEMPLATE(
    "websocket sink: a first init larger than the queue's limit is not taken for a "
    "slow client",
    Mode, StrandMode, SingleThreadMode) {
  const UseThreading use(Mode::value);
  asio::io_context io;
  auto options = no_batching();
  options.queue.max_bytes = 64 * 1024;
  notify::NotificationHub hub(io.get_executor(), options);
  for (int i = 0; i < 10; ++i) {  // 160 KiB of unread notifications: an init over the limit
    auto n = draft("alice", "waiting " + std::to_string(i));
    n.body = std::string(16 * 1024, 'w');
    hub.publish(n);
  }
  WsClient c(io, hub, "alice");
  // Published before the io_context has run: the init is still queued when it comes.
  const auto live = hub.publish(draft("alice", "live"));
  REQUIRE(test::run_until(io, [&] { return c.messages().size() == 2; }));
  const auto m = c.messages();
  CHECK(m[0]["type"] == "init");
  CHECK(m[0]["data"]["notifications"].size() == 10);
  CHECK(m[1]["type"] == "notification");
  CHECK(m[1]["id"] == live);
  CHECK(hub.metrics().resyncs == 0);
}
