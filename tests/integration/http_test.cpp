// The demo's HTTP layer: errors, limits, keep-alive, static pages, metrics, flags.
#include "support.hpp"

#include <thread>

using namespace itest;
using nlohmann::json;

namespace {

// The response is a JSON error with the right headers; returns its message.
std::string error_of(const HttpResponse& r) {
  CHECK(r.header("Content-Type") == "application/json");
  CHECK(r.header("Content-Length") == std::to_string(r.body.size()));
  const json j = json::parse(r.body);
  REQUIRE(j.is_object());
  REQUIRE(j.contains("error"));
  return j.at("error").get<std::string>();
}

}  // namespace

TEST_CASE("http: bad requests get JSON errors") {
  DemoProcess demo(unbatched());
  const auto port = demo.port();

  SUBCASE("invalid JSON") {
    const auto r = http_request(port, "POST", "/api/notifications", "{not json");
    CHECK(r.status == 400);
    CHECK(error_of(r).rfind("invalid JSON", 0) == 0);
  }
  SUBCASE("not an object") {
    const auto r = http_request(port, "POST", "/api/notifications", "[1,2]");
    CHECK(r.status == 400);
    error_of(r);
  }
  SUBCASE("missing title") {
    const auto r = post_notification(port, {{"userId", "a"}, {"type", "comment"}});
    CHECK(r.status == 400);
    CHECK(error_of(r) == "title: missing");
  }
  SUBCASE("a field of the wrong type") {
    const auto r = post_notification(port, {{"userId", "a"}, {"type", "comment"}, {"title", 5}});
    CHECK(r.status == 400);
    CHECK(error_of(r) == "title: must be a string");
  }
  SUBCASE("no recipient") {
    const auto r = post_notification(port, {{"type", "comment"}, {"title", "t"}});
    CHECK(r.status == 400);
    CHECK(error_of(r) == "userId: missing (or userIds, or broadcast)");
  }
  SUBCASE("bad userIds") {
    const auto r = post_notification(port, {{"userIds", "a"}, {"type", "comment"}, {"title", "t"}});
    CHECK(r.status == 400);
    CHECK(error_of(r).rfind("userIds:", 0) == 0);
  }
  SUBCASE("data nested as deep as a body can hold, and the server goes on") {
    // 900 KB of brackets: copying or writing that recursively would overflow the stack.
    const std::size_t depth = 450 * 1000;
    const std::string body = R"({"userId":"a","type":"comment","title":"t","data":{"a":)" +
                             std::string(depth, '[') + std::string(depth, ']') + "}}";
    const auto r = http_request(port, "POST", "/api/notifications", body);
    CHECK(r.status == 400);
    CHECK(error_of(r) == "data: nested deeper than 32 levels");
    const auto ok = post_notification(port, {{"userId", "a"}, {"type", "comment"}, {"title", "t"}});
    CHECK(ok.status == 202);
  }
  SUBCASE("a number too large for a double") {
    const auto r =
        http_request(port, "POST", "/api/notifications",
                     R"({"userId":"a","type":"comment","title":"t","data":{"n":1e999}})");
    CHECK(r.status == 400);  // was a 500: the parse's out_of_range escaped its catch
    CHECK(error_of(r).find("number overflow") != std::string::npos);
  }
  SUBCASE("an id in the body is ignored") {
    const auto r = post_notification(
        port, {{"id", "12345"}, {"userId", "a"}, {"type", "comment"}, {"title", "t"}});
    CHECK(r.status == 202);
    CHECK(r.json().at("id") != "12345");
  }
  SUBCASE("unknown route") {
    const auto r = http_request(port, "GET", "/nope");
    CHECK(r.status == 404);
    error_of(r);
    CHECK(http_request(port, "GET", "/api/notifications/7").status == 404);
  }
  SUBCASE("wrong method") {
    const auto r = http_request(port, "DELETE", "/api/notifications");
    CHECK(r.status == 405);
    CHECK(r.header("Allow") == "GET, HEAD, POST");
    error_of(r);
    const auto s = http_request(port, "POST", "/api/notifications/stream?user=a");
    CHECK(s.status == 405);
    CHECK(s.header("Allow") == "GET");
    const auto m = http_request(port, "GET", "/api/notifications/read-all?user=a");
    CHECK(m.status == 405);
    CHECK(m.header("Allow") == "POST");
  }
  SUBCASE("a stream without a user") {
    SseStream s(port, "/api/notifications/stream");
    CHECK(s.status() == 401);
    CHECK(s.response().header("Content-Type") == "application/json");
    CHECK(json::parse(s.response().body).contains("error"));
  }
  // Whatever happened, the server still answers.
  CHECK(http_request(port, "GET", "/healthz").status == 200);
}

TEST_CASE("http: size limits") {
  DemoProcess demo(unbatched());
  const auto port = demo.port();

  SUBCASE("a declared body over 1 MiB is refused with 413") {
    HttpClient c(port);
    REQUIRE(
        c.send_raw("POST /api/notifications HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"));
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 413);
    error_of(*r);
    CHECK(r->header("Connection") == "close");
  }
  SUBCASE("a body just under the limit is parsed") {
    const std::string body = "{\"userId\":\"a\",\"type\":\"comment\",\"title\":\"t\",\"body\":\"" +
                             std::string(1000 * 1000, 'x') + "\"}";
    const auto r = http_request(port, "POST", "/api/notifications", body);
    // The library limits bodies to 64 KiB: a validation error, not a transport one.
    CHECK(r.status == 400);
    CHECK(error_of(r).rfind("body:", 0) == 0);
  }
  SUBCASE("a head over 16 KiB is refused with 431") {
    HttpClient c(port);
    const auto r = c.request("GET", "/healthz", {}, {{"X-Big", std::string(20 * 1024, 'b')}});
    CHECK(r.status == 431);
    error_of(r);
  }
  SUBCASE("many headers over 16 KiB are refused with 431") {
    Headers many;
    for (int i = 0; i < 400; ++i)
      many.emplace_back("X-H" + std::to_string(i), std::string(50, 'v'));
    HttpClient c(port);
    const auto r = c.request("GET", "/healthz", {}, many);
    CHECK(r.status == 431);
  }
  SUBCASE("a long query over 16 KiB is refused with 431") {
    HttpClient c(port);
    const auto r = c.request("GET", "/healthz?x=" + std::string(17 * 1024, 'q'));
    CHECK(r.status == 431);
  }
  CHECK(http_request(port, "GET", "/healthz").status == 200);
}

TEST_CASE("http: a garbage request gets 400, and the server goes on") {
  DemoProcess demo(unbatched());
  {
    HttpClient c(demo.port());
    REQUIRE(c.send_raw("THIS IS NOT HTTP\r\n\r\n"));
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 400);
    error_of(*r);
    CHECK(c.wait_eof());
  }
  {
    HttpClient c(demo.port());
    REQUIRE(c.send_raw(std::string("GET / HTTP/1.1\r\nHost: x\r\nBad Header\x01: y\r\n\r\n")));
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 400);
  }
  {
    HttpClient c(demo.port());
    REQUIRE(c.send_raw(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));  // TLS
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 400);
  }
  const auto r = http_request(demo.port(), "GET", "/healthz");
  CHECK(r.status == 200);
  CHECK(r.json() == json({{"status", "ok"}}));
}

TEST_CASE("http: keep-alive and pipelining") {
  DemoProcess demo(unbatched());
  SUBCASE("two requests on one connection") {
    HttpClient c(demo.port());
    const auto a = c.request("GET", "/healthz");
    CHECK(a.status == 200);
    CHECK_FALSE(a.has_header("Connection"));
    const auto b = c.request("POST", "/api/notifications",
                             json{{"userId", "k"}, {"type", "comment"}, {"title", "t"}}.dump());
    CHECK(b.status == 202);
    const auto l = c.request("GET", "/api/notifications?user=k");
    CHECK(l.status == 200);
    CHECK(l.json().at("unreadCount") == 1);
  }
  SUBCASE("pipelined requests are answered in order") {
    HttpClient c(demo.port());
    const std::string body = json{{"userId", "p"}, {"type", "comment"}, {"title", "t"}}.dump();
    std::string reqs = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    reqs += "POST /api/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body;
    reqs += "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
    reqs += "GET /api/notifications?user=p HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(c.send_raw(reqs));
    const auto r1 = c.read_response();
    const auto r2 = c.read_response();
    const auto r3 = c.read_response();
    const auto r4 = c.read_response();
    REQUIRE((r1 && r2 && r3 && r4));
    CHECK(r1->status == 200);
    CHECK(r2->status == 202);
    CHECK(r3->status == 404);
    CHECK(r4->status == 200);
    CHECK(r4->json().at("unreadCount") == 1);
  }
  SUBCASE("a request sees none of the headers or the body of the one before") {
    // The connection reuses its request's strings and header slots from one request to the
    // next: what an earlier request said must not leak into a later one.
    HttpClient c(demo.port());
    const std::string long_user(300, 'x');  // past any small-string buffer; invalid (> 256)
    const auto bad = c.request("GET", "/api/notifications", {},
                               {{"X-User-Id", long_user}, {"X-Extra-1", "a"}, {"X-Extra-2", "b"}});
    CHECK(bad.status == 400);
    const auto none = c.request("GET", "/api/notifications");
    CHECK(none.status == 401);
    const std::string big_title(200 * 1024, 't');
    const auto published =
        c.request("POST", "/api/notifications",
                  json{{"userId", "reuse"}, {"type", "comment"}, {"title", big_title}}.dump());
    CHECK(published.status == 400);  // the title is over its limit
    const auto small =
        c.request("POST", "/api/notifications",
                  json{{"userId", "reuse"}, {"type", "comment"}, {"title", "t"}}.dump());
    CHECK(small.status == 202);
    const auto list = c.request("GET", "/api/notifications", {}, {{"x-user-id", "reuse"}});
    REQUIRE(list.status == 200);
    CHECK(list.json().at("unreadCount") == 1);
    CHECK(list.json().at("notifications").at(0).at("title") == "t");
    const auto again = c.request("GET", "/api/notifications");
    CHECK(again.status == 401);
  }
  SUBCASE("Connection: close is honoured") {
    HttpClient c(demo.port());
    const auto r = c.request("GET", "/healthz", {}, {{"Connection", "close"}});
    CHECK(r.status == 200);
    CHECK(r.header("Connection") == "close");
    CHECK(c.wait_eof());
  }
  SUBCASE("HTTP/1.0 closes after the response") {
    HttpClient c(demo.port());
    REQUIRE(c.send_raw("GET /healthz HTTP/1.0\r\n\r\n"));
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 200);
    CHECK(c.wait_eof());
  }
  SUBCASE("Expect: 100-continue") {
    HttpClient c(demo.port());
    const std::string body = json{{"userId", "e"}, {"type", "comment"}, {"title", "t"}}.dump();
    REQUIRE(
        c.send_raw("POST /api/notifications HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                   "Content-Length: " +
                   std::to_string(body.size()) + "\r\n\r\n"));
    std::string got;
    const auto deadline = Clock::now() + default_timeout;
    while (got.find("\r\n\r\n") == std::string::npos) {
      REQUIRE(c.socket().recv_some(got, deadline) > 0);
    }
    CHECK(got.rfind("HTTP/1.1 100 Continue\r\n", 0) == 0);
    REQUIRE(c.send_raw(body));
    const auto r = c.read_response();
    REQUIRE(r.has_value());
    CHECK(r->status == 202);
  }
}

TEST_CASE("http: timeouts") {
  // One timer per connection waits for the latest deadline: requests in a row push it out,
  // a stalled request gets 408, and an idle connection closes, never before its time.
  // 2 s: the client below must send within it while the machine may be loaded.
  constexpr std::chrono::milliseconds timeout{2000};
  const auto ms = std::to_string(timeout.count());
  DemoProcess demo(unbatched({"--idle-timeout", ms, "--request-timeout", ms}));
  SUBCASE("requests more often than the idle timeout keep the connection open") {
    HttpClient c(demo.port());
    const auto first = Clock::now();
    const auto until = first + 3 * timeout;
    int answered = 0;
    auto last = first;
    while (Clock::now() < until) {
      const auto r = c.request("GET", "/healthz");
      REQUIRE(r.status == 200);  // on the one connection
      ++answered;
      last = Clock::now();
      std::this_thread::sleep_for(timeout / 10);
    }
    // The connection served requests for over twice its idle timeout. (How many depends on
    // the machine's load: a loaded one answered fewer than 10.)
    CHECK(answered >= 3);
    CHECK(last - first >= 2 * timeout);
  }
  SUBCASE("an idle keep-alive connection closes after the idle timeout") {
    HttpClient c(demo.port());
    // The server's idle timer starts when it has written the answer: after this moment, and
    // perhaps well before the client reads it on a loaded machine.
    const auto asked = Clock::now();
    REQUIRE(c.request("GET", "/healthz").status == 200);
    CHECK(c.wait_eof(5 * timeout));
    CHECK(Clock::now() - asked >= timeout - std::chrono::milliseconds(10));
  }
  SUBCASE("a request that stalls gets 408, then the connection closes") {
    HttpClient c(demo.port());
    REQUIRE(c.request("GET", "/healthz").status == 200);
    const auto started = Clock::now();
    REQUIRE(
        c.send_raw("POST /api/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n"
                   "\r\n{\"userId\""));
    const auto r = c.read_response(5 * timeout);
    REQUIRE(r.has_value());
    CHECK(r->status == 408);
    CHECK(error_of(*r) == "request timeout");
    CHECK(Clock::now() - started >= timeout - std::chrono::milliseconds(100));
    CHECK(c.wait_eof(5 * timeout));
  }
}

TEST_CASE("http: the demo page, health and metrics") {
  DemoProcess demo(unbatched());
  const auto page = http_request(demo.port(), "GET", "/");
  CHECK(page.status == 200);
  CHECK(page.header("Content-Type") == "text/html; charset=utf-8");
  CHECK(page.header("Cache-Control") == "no-cache");
  CHECK(page.body.find("<html") != std::string::npos);

  const auto js = http_request(demo.port(), "GET", "/notify-client.js");
  CHECK(js.status == 200);
  CHECK(js.header("Content-Type").find("javascript") != std::string::npos);
  CHECK_FALSE(js.body.empty());
  CHECK(http_request(demo.port(), "POST", "/app.js").status == 405);
  CHECK(http_request(demo.port(), "GET", "/app.js?v=2").status == 200);

  const auto health = http_request(demo.port(), "GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.header("Content-Type") == "application/json");
  CHECK(health.json() == json({{"status", "ok"}}));

  // Something to count.
  SseStream s(demo.port(), SseStream::target_for("m"));
  s.expect("init");
  publish(demo.port(), "m", "count me");
  s.expect("notification");

  const auto metrics = http_request(demo.port(), "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.header("Content-Type") == "text/plain; version=0.0.4");
  CHECK(metrics.body.find("notify_connections") != std::string::npos);
  CHECK(metrics.body.find("notify_events_delivered_total") != std::string::npos);
}

TEST_CASE("http: command line") {
  SUBCASE("--help") {
    const auto r = run_to_completion(NOTIFY_DEMO_PATH, {"--help"}, std::chrono::seconds(10));
    CHECK(r.status.exited);
    CHECK(r.status.code == 0);
    CHECK(r.out.find("--port") != std::string::npos);
  }
  SUBCASE("bad flags exit 2 with a message on stderr") {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"--nope"},
                                                 {"--port", "70000"},
                                                 {"--heartbeat", "0"},
                                                 {"--batch-ms", "x"},
                                                 {"--auth", "jwt"},
                                                 {"--threads", "0"},
                                                 {"--port"},
                                                 {"--bind", "not-an-ip"},
                                                 {"--idle-timeout", "0"},
                                                 {"--request-timeout", "soon"},
                                                 {"--session-seconds", "-1"},
                                                 {"--wait-replicas", "x"},
                                                 {"--wait-replicas", "1"}}) {
      const auto r = run_to_completion(NOTIFY_DEMO_PATH, args, std::chrono::seconds(10));
      CAPTURE(args.front());
      CHECK(r.status.exited);
      CHECK(r.status.code == 2);
      CHECK_FALSE(r.err.empty());
      CHECK(r.out.empty());
    }
  }
}

namespace {

// One request on a connection of its own: its response, and whether the server then closed.
struct Answer {
  std::optional<HttpResponse> response;
  bool closed = false;
};
Answer answer_to(std::uint16_t port, const std::string& raw) {
  HttpClient c(port);
  Answer a;
  if (!c.send_raw(raw))
    return a;
  a.response = c.read_response();
  a.closed = a.response && a.response->header("Connection") == "close" && c.wait_eof();
  return a;
}

}  // namespace

TEST_CASE("http: framing and fields as RFC 9110 and 9112 have them") {
  DemoProcess demo(unbatched());
  const auto port = demo.port();
  const std::string body = json{{"userId", "f"}, {"type", "comment"}, {"title", "t"}}.dump();
  const std::string length = std::to_string(body.size());

  SUBCASE("a body with a transfer coding is refused with 411, however it is framed") {
    // Debian's http-parser takes loose chunked framing (any two bytes for a CRLF) and merges
    // trailers into the head: the demo takes no transfer coding at all.
    for (const std::string& chunked : std::vector<std::string>{
             "POST /api/notifications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 std::to_string(body.size()) + "\r\n" + body + "\r\n0\r\n\r\n",
             "POST /api/notifications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 std::to_string(body.size()) + "\r\n" + body + "XX0\r\n\r\n",
             "POST /api/sessions/end HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\nX-User-Id: alice\r\nX-Other: 1\r\n\r\n",
         }) {
      CAPTURE(chunked);
      const auto a = answer_to(port, chunked);
      REQUIRE(a.response);
      CHECK(a.response->status == 411);
      error_of(*a.response);
      CHECK(a.closed);
    }
  }
  SUBCASE("whitespace between a field's name and its colon is refused with 400") {
    for (const std::string head :
         {"Transfer-Encoding : chunked", "Content-Length : 5", "X-User-Id\t: f"}) {
      CAPTURE(head);
      const auto a = answer_to(port, "POST /api/notifications HTTP/1.1\r\nHost: x\r\n" + head +
                                         "\r\nContent-Length: " + length + "\r\n\r\n" + body);
      REQUIRE(a.response);
      CHECK(a.response->status == 400);
      // A tab is no character of a name to http-parser already; a space is, to it.
      if (head.find(" :") != std::string::npos)
        CHECK(error_of(*a.response).find("colon") != std::string::npos);
      CHECK(a.closed);
    }
  }
  SUBCASE("the spaces that end a field's value are not part of it") {
    CHECK(post_notification(port, {{"userId", "f"}, {"type", "comment"}, {"title", "t"}}).status ==
          202);
    HttpClient c(port);
    const auto r = c.request("GET", "/api/notifications", {}, {{"X-User-Id", "f \t "}});
    REQUIRE(r.status == 200);
    CHECK(r.json().at("unreadCount") == 1);
  }
  SUBCASE("request lines and Host fields the demo refuses") {
    struct Row {
      const char* raw;
      int status;
      const char* error_says;
    };
    for (const Row& row : {
             Row{"GET /healthz HTTP/1.1\r\n\r\n", 400, "Host"},
             Row{"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"},
             Row{"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"},
             Row{"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, ""},
             Row{"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 501, ""},  // unknown to http-parser
         }) {
      CAPTURE(row.raw);
      const auto a = answer_to(port, row.raw);
      REQUIRE(a.response);
      CHECK(a.response->status == row.status);
      CHECK(error_of(*a.response).find(row.error_says) != std::string::npos);
    }
    const auto old = answer_to(port, "GET /healthz HTTP/1.0\r\n\r\n");  // Host is optional
    REQUIRE(old.response);
    CHECK(old.response->status == 200);
    CHECK(old.closed);  // HTTP/1.0 closes unless it asks otherwise
  }
  SUBCASE("an HTTP/1.0 connection kept alive is told so") {
    HttpClient c(port);
    REQUIRE(c.send_raw("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    const auto first = c.read_response();
    REQUIRE(first);
    CHECK(first->status == 200);
    CHECK(first->header("Connection") == "keep-alive");
    REQUIRE(c.send_raw("GET /healthz HTTP/1.0\r\n\r\n"));
    const auto second = c.read_response();
    REQUIRE(second);
    CHECK(second->status == 200);
    CHECK(second->header("Connection") == "close");
    CHECK(c.wait_eof());
  }
  SUBCASE("an HTTP/1.0 client is not sent 100 Continue") {
    HttpClient c(port);
    REQUIRE(
        c.send_raw("POST /api/notifications HTTP/1.0\r\nExpect: 100-continue\r\n"
                   "Content-Length: " +
                   length + "\r\n\r\n"));
    // Nothing may come before the body is sent; what comes after it is the 202.
    std::string early;
    CHECK(c.socket().recv_some(early, Clock::now() + std::chrono::milliseconds(300)) == -1);
    CHECK(early.empty());
    REQUIRE(c.send_raw(body));
    const auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 202);
  }
  SUBCASE("HEAD is GET without the body, but not for the stream and the WebSocket") {
    // Raw bytes: a client that did not know it sent HEAD would wait for the body.
    HttpClient c(port);
    REQUIRE(
        c.send_raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                   "HEAD /api/notifications/stream?user=f HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string bytes;
    const auto deadline = Clock::now() + default_timeout;
    while (bytes.find(R"({"status":"ok"})") == std::string::npos &&
           c.socket().recv_some(bytes, deadline) > 0) {
    }
    std::vector<HttpResponse> heads;
    for (std::size_t at = 0, end; (end = bytes.find("\r\n\r\n", at)) != std::string::npos;
         at = end + 4) {
      HttpResponse r;
      REQUIRE(parse_response_head(std::string_view(bytes).substr(at, end - at), r));
      heads.push_back(r);
      if (heads.size() == 3) {
        CHECK(bytes.substr(end + 4) == R"({"status":"ok"})");  // the GET's body, no other
        break;
      }
    }
    REQUIRE(heads.size() == 3);
    CHECK(heads[0].status == 200);
    CHECK(heads[0].header("Content-Length") == heads[2].header("Content-Length"));
    CHECK(heads[1].status == 405);
    CHECK(heads[1].header("Allow") == "GET");
    CHECK(heads[2].status == 200);
    const auto other = c.request("DELETE", "/healthz");
    CHECK(other.header("Allow") == "GET, HEAD");
  }
  SUBCASE("a notification's recipients must be users someone could sign in as, of one kind") {
    struct Row {
      json recipients;
      const char* error_says;
    };
    const char* const unusable = "UTF-8 without control characters";
    const char* const one_kind = "userId, userIds and broadcast: give only one";
    for (const Row& row : {
             Row{{{"userId", std::string("a\x01b")}}, unusable},
             Row{{{"userId", std::string(257, 'u')}}, unusable},
             Row{{{"userIds", {"ok", std::string("bad\x7f")}}}, unusable},
             Row{{{"userId", "f"}, {"broadcast", true}}, one_kind},
             Row{{{"userIds", {"f"}}, {"broadcast", true}}, one_kind},
             Row{{{"userId", "f"}, {"userIds", {"g"}}}, one_kind},
         }) {
      CAPTURE(row.recipients.dump());
      json n = row.recipients;
      n["type"] = "comment";
      n["title"] = "t";
      const auto r = http_request(port, "POST", "/api/notifications", n.dump());
      CHECK(r.status == 400);
      CHECK(error_of(r).find(row.error_says) != std::string::npos);
    }
    const auto list = http_request(port, "GET", "/api/notifications?user=g");
    CHECK(list.json().at("unreadCount") == 0);  // nothing was published
  }
  // Whatever happened, the server still answers.
  CHECK(http_request(port, "GET", "/healthz").status == 200);
}
