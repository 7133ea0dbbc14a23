// The event stream: its head, init, and live delivery.
#include "../support/temp_dir.hpp"
#include "support.hpp"

using namespace itest;
using nlohmann::json;

TEST_CASE("stream: the head has the SSE headers and init comes first") {
  DemoProcess demo(unbatched());
  SseStream stream(demo.port(), SseStream::target_for("alice"));
  REQUIRE(stream.status() == 200);
  CHECK(stream.response().header("Content-Type") == "text/event-stream; charset=utf-8");
  CHECK(stream.response().header("Cache-Control") == "no-cache");
  CHECK(stream.response().header("X-Accel-Buffering") == "no");
  CHECK_FALSE(stream.response().has_header("Content-Length"));

  const auto init = stream.expect("init");
  const json data = init.json();
  CHECK(data.at("unreadCount") == 0);
  CHECK(data.at("notifications").is_array());
  CHECK(data.at("notifications").empty());
}

TEST_CASE("stream: the X-User-Id header names the user too") {
  DemoProcess demo(unbatched());
  SseStream stream(demo.port(), "/api/notifications/stream", {{"X-User-Id", "bob"}});
  REQUIRE(stream.status() == 200);
  stream.expect("init");
  const std::string id = publish(demo.port(), "bob", "hi bob");
  const auto e = stream.expect("notification");
  CHECK(e.id == id);
}

TEST_CASE("stream: a published notification arrives byte for byte") {
  DemoProcess demo(unbatched());
  SseStream stream(demo.port(), SseStream::target_for("alice"));
  REQUIRE(stream.status() == 200);
  stream.expect("init");

  const std::string title =
      "Gr\xC3\xBC\xC3\x9F"
      "e \xF0\x9F\x8E\x89 \xE2\x80\x94 \xE4\xBD\xA0\xE5\xA5\xBD";
  const std::string body = "line one\nline two\r\nline three\rend \"quoted\" \\ back\tslash";
  const json posted = {
      {"userId", "alice"}, {"type", "mention"},       {"title", title},
      {"body", body},      {"actorId", "bob"},        {"entityType", "post"},
      {"entityId", "7"},   {"actionUrl", "/posts/7"}, {"data", {{"k", "v"}, {"n", 3}}}};
  const auto r = post_notification(demo.port(), posted);
  REQUIRE(r.status == 202);
  CHECK(r.header("Content-Type") == "application/json");
  const std::string id = r.json().at("id").get<std::string>();
  CHECK_FALSE(id.empty());

  const auto e = stream.expect("notification");
  REQUIRE(e.id.has_value());
  CHECK(*e.id == id);
  const json n = e.json();
  CHECK(n.at("id") == id);
  CHECK(n.at("userId") == "alice");
  CHECK(n.at("type") == "mention");
  CHECK(n.at("title").get<std::string>() == title);
  CHECK(n.at("body").get<std::string>() == body);
  CHECK(n.at("actorId") == "bob");
  CHECK(n.at("entityType") == "post");
  CHECK(n.at("entityId") == "7");
  CHECK(n.at("actionUrl") == "/posts/7");
  CHECK(n.at("data") == json({{"k", "v"}, {"n", 3}}));
  CHECK(n.at("readAt").is_null());
  CHECK(n.at("createdAt").is_string());
}

TEST_CASE("stream: every stream of the user gets it, other users do not") {
  DemoProcess demo(unbatched());
  SseStream a1(demo.port(), SseStream::target_for("ann"));
  SseStream a2(demo.port(), SseStream::target_for("ann"));
  SseStream b(demo.port(), SseStream::target_for("ben"));
  for (auto* s : {&a1, &a2, &b}) {
    REQUIRE(s->status() == 200);
    s->expect("init");
  }

  const std::string for_ann = publish(demo.port(), "ann", "for ann");
  CHECK(a1.expect("notification").id == for_ann);
  CHECK(a2.expect("notification").id == for_ann);

  // The next thing ben sees is his own notification, not ann's.
  const std::string for_ben = publish(demo.port(), "ben", "for ben");
  const auto e = b.expect("notification");
  CHECK(e.id == for_ben);
  CHECK(e.json().at("title") == "for ben");
  CHECK(a1.quiet_for(std::chrono::milliseconds(200)));
}

TEST_CASE("stream: userIds publishes one notification per user") {
  DemoProcess demo(unbatched());
  SseStream u1(demo.port(), SseStream::target_for("u1"));
  SseStream u2(demo.port(), SseStream::target_for("u2"));
  u1.expect("init");
  u2.expect("init");

  const auto r = post_notification(
      demo.port(), {{"userIds", {"u1", "u2"}}, {"type", "order"}, {"title", "shipped"}});
  REQUIRE(r.status == 202);
  const auto ids = r.json().at("ids").get<std::vector<std::string>>();
  REQUIRE(ids.size() == 2);
  CHECK(ids[0] != ids[1]);

  const auto e1 = u1.expect("notification");
  const auto e2 = u2.expect("notification");
  CHECK(e1.id == ids[0]);
  CHECK(e2.id == ids[1]);
  CHECK(e1.json().at("userId") == "u1");
  CHECK(e2.json().at("userId") == "u2");
}

TEST_CASE("stream: a broadcast reaches every user") {
  DemoProcess demo(unbatched());
  SseStream x(demo.port(), SseStream::target_for("x"));
  SseStream y(demo.port(), SseStream::target_for("y"));
  x.expect("init");
  y.expect("init");

  const auto r = post_notification(
      demo.port(), {{"broadcast", true}, {"type", "system"}, {"title", "maintenance at 6"}});
  REQUIRE(r.status == 202);
  const std::string id = r.json().at("id").get<std::string>();

  for (auto* s : {&x, &y}) {
    const auto e = s->expect("notification");
    CHECK(e.id == id);
    const json n = e.json();
    CHECK(n.at("broadcast") == true);
    CHECK(n.at("title") == "maintenance at 6");
  }

  // A user who connects later sees it as unread in init.
  SseStream z(demo.port(), SseStream::target_for("z"));
  const json init = z.expect("init").json();
  CHECK(init.at("unreadCount") == 1);
  CHECK(ids_of(init.at("notifications")) == std::vector<std::string>{id});
}

TEST_CASE("stream: notifications within the batch window go out as one batch") {
  // A window long enough for three POSTs on a machine loaded by other suites (under TSan, on
  // two busy cores, three took more than 300 ms).
  DemoProcess demo({"--batch-ms", "1000"});
  SseStream stream(demo.port(), SseStream::target_for("batchy"));
  REQUIRE(stream.status() == 200);
  stream.expect("init");

  HttpClient client(demo.port());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const json j = {{"userId", "batchy"}, {"type", "comment"}, {"title", "c" + std::to_string(i)}};
    const auto r = client.request("POST", "/api/notifications", j.dump());
    REQUIRE(r.status == 202);
    ids.push_back(r.json().at("id").get<std::string>());
  }

  const auto e = stream.expect("notifications:batch");
  REQUIRE(e.id.has_value());
  CHECK(*e.id == ids.back());
  const json items = e.json();
  REQUIRE(items.is_array());
  CHECK(ids_of(items) == ids);
  CHECK(items.at(0).at("title") == "c0");
  CHECK(stream.quiet_for(std::chrono::milliseconds(500)));
}

TEST_CASE("stream: a publish retried with its Idempotency-Key is stored and delivered once") {
  testsupport::TempDir dir;
  const std::vector<std::vector<std::string>> stores = {
      {}, {"--store", "sqlite:" + dir.file("demo.db")}};
  for (const auto& store : stores) {
    CAPTURE(store.size());
    DemoProcess demo(unbatched(store));
    SseStream alice(demo.port(), SseStream::target_for("alice"));
    SseStream bob(demo.port(), SseStream::target_for("bob"));
    alice.expect("init");
    bob.expect("init");
    const auto post = [&](const json& body, const std::string& key) {
      return http_request(demo.port(), "POST", "/api/notifications", body.dump(),
                          {{"Content-Type", "application/json"}, {"Idempotency-Key", key}});
    };
    const json shipped = {{"userId", "alice"}, {"type", "order"}, {"title", "shipped"}};
    const auto first = post(shipped, "order-42:shipped");
    REQUIRE(first.status == 202);
    const auto id = first.json().at("id").get<std::string>();
    const auto retried = post(shipped, "order-42:shipped");
    REQUIRE(retried.status == 202);
    CHECK(retried.json().at("id") == id);
    // The key reused for another notification: refused, so that the mistake shows.
    const json other = {{"userId", "alice"}, {"type", "order"}, {"title", "delivered"}};
    const auto reused = post(other, "order-42:shipped");
    CHECK(reused.status == 400);
    CHECK(reused.json().at("error") ==
          "idempotencyKey: already used for a different notification (" + id + ")");

    const json digest = {{"userIds", {"alice", "bob"}}, {"type", "system"}, {"title", "digest"}};
    const auto ids = post(digest, "digest-2026-11-30");
    REQUIRE(ids.status == 202);
    CHECK(post(digest, "digest-2026-11-30").json().at("ids") == ids.json().at("ids"));

    for (const auto& [key, problem] : std::vector<std::pair<std::string, std::string>>{
             {"", "Idempotency-Key: empty"},
             {"has space", "idempotencyKey: may hold only printable ASCII without spaces"},
             {std::string(256, 'k'), "idempotencyKey: longer than 255 bytes"}}) {
      const auto refused = post(shipped, key);
      CHECK(refused.status == 400);
      CHECK(refused.json().at("error") == problem);
    }

    const auto last = publish(demo.port(), "alice", "last");
    CHECK(alice.expect("notification").id == id);
    CHECK(alice.expect("notification").id == ids.json().at("ids")[0].get<std::string>());
    CHECK(alice.expect("notification").id == last);  // no repeat came between
    CHECK(bob.expect("notification").id == ids.json().at("ids")[1].get<std::string>());
    CHECK(bob.quiet_for(std::chrono::milliseconds(200)));
    const auto listed = http_request(demo.port(), "GET", "/api/notifications?user=alice");
    REQUIRE(listed.status == 200);
    CHECK(listed.json().at("notifications").size() == 3);
    CHECK(http_request(demo.port(), "GET", "/metrics")
              .body.find("notify_publish_replays_total 4\n") != std::string::npos);
  }
}
