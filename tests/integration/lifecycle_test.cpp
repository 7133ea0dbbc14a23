// Heartbeats, connection limits, threads and shutdown.
#include "support.hpp"

#include <thread>

using namespace itest;
using nlohmann::json;

TEST_CASE("lifecycle: an idle stream gets heartbeat events, and its init says how often") {
  DemoProcess demo(unbatched({"--heartbeat", "1"}));
  SseStream s(demo.port(), SseStream::target_for("hb"));
  REQUIRE(s.status() == 200);
  CHECK(s.expect("init").json().at("heartbeatMs") == 1000);
  // One is due within 2 s; the margin is for a machine loaded by other suites.
  CHECK(s.wait_heartbeat(std::chrono::seconds(10)));
  // Still a working stream afterwards.
  const std::string id = publish(demo.port(), "hb", "after the heartbeat");
  CHECK(s.expect("notification").id == id);
}

TEST_CASE("lifecycle: connections over --max-connections are refused with a JSON error") {
  DemoProcess demo(unbatched({"--max-connections", "2"}));
  SseStream a(demo.port(), SseStream::target_for("one"));
  SseStream b(demo.port(), SseStream::target_for("two"));
  a.expect("init");
  b.expect("init");
  SseStream c(demo.port(), SseStream::target_for("three"));
  CHECK(c.status() == 503);
  CHECK(c.response().header("Content-Type") == "application/json");
  CHECK(json::parse(c.response().body).contains("error"));

  // A slot frees when a stream goes away.
  a.close();
  bool attached = false;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!attached && Clock::now() < deadline) {
    SseStream d(demo.port(), SseStream::target_for("four"));
    attached = d.status() == 200;
    if (!attached)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(attached);
}

TEST_CASE("lifecycle: with several threads everything still works") {
  DemoProcess demo(unbatched({"--threads", "4"}));
  SseStream s(demo.port(), SseStream::target_for("mt"));
  s.expect("init");
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i)
    ids.push_back(publish(demo.port(), "mt", "n" + std::to_string(i)));
  for (const auto& id : ids)
    CHECK(s.expect("notification").id == id);
}

TEST_CASE("lifecycle: SIGTERM ends the process cleanly while streams are open") {
  DemoProcess demo(unbatched());
  SseStream s(demo.port(), SseStream::target_for("bye"));
  REQUIRE(s.status() == 200);
  s.expect("init");
  HttpClient idle(demo.port());  // a keep-alive connection between requests
  CHECK(idle.request("GET", "/healthz").status == 200);

  const auto started = Clock::now();
  const auto status = demo.terminate(std::chrono::seconds(4));
  REQUIRE(status.has_value());
  CHECK(status->exited);
  CHECK(status->code == 0);
  CHECK(Clock::now() - started < std::chrono::seconds(4));
  CHECK(s.wait_eof(std::chrono::seconds(2)));
  CHECK(idle.wait_eof(std::chrono::seconds(2)));
}
