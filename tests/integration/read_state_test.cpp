// Read state over HTTP: mark one read, read all, and the list.
#include "support.hpp"

#include <algorithm>

using namespace itest;
using nlohmann::json;

TEST_CASE("read state: marking read reaches every stream of the user") {
  DemoProcess demo(unbatched());
  SseStream s1(demo.port(), SseStream::target_for("mo"));
  SseStream s2(demo.port(), SseStream::target_for("mo"));
  SseStream other(demo.port(), SseStream::target_for("not-mo"));
  for (auto* s : {&s1, &s2, &other})
    s->expect("init");

  const std::string n1 = publish(demo.port(), "mo", "first");
  const std::string n2 = publish(demo.port(), "mo", "second");
  for (auto* s : {&s1, &s2}) {
    CHECK(s->expect("notification").id == n1);
    CHECK(s->expect("notification").id == n2);
  }

  SUBCASE("one") {
    const auto r = http_request(demo.port(), "POST", "/api/notifications/" + n1 + "/read?user=mo");
    REQUIRE(r.status == 200);
    CHECK(r.json() == json({{"ids", {n1}}, {"unreadCount", 1}}));
    for (auto* s : {&s1, &s2}) {
      const auto e = s->expect("notification:read");
      CHECK_FALSE(e.id.has_value());
      CHECK(e.json() == json({{"ids", {n1}}, {"unreadCount", 1}}));
    }
    // Again: nothing changes.
    const auto again = http_request(demo.port(), "POST", "/api/notifications/" + n1 + "/read", {},
                                    {{"X-User-Id", "mo"}});
    REQUIRE(again.status == 200);
    CHECK(again.json().at("ids").empty());
    CHECK(again.json().at("unreadCount") == 1);
    // Another user cannot mark mo's notification.
    const auto foreign =
        http_request(demo.port(), "POST", "/api/notifications/" + n2 + "/read?user=not-mo");
    REQUIRE(foreign.status == 200);
    CHECK(foreign.json().at("ids").empty());
  }
  SUBCASE("all") {
    const auto r = http_request(demo.port(), "POST", "/api/notifications/read-all?user=mo");
    REQUIRE(r.status == 200);
    const json body = r.json();
    CHECK(body.at("unreadCount") == 0);
    auto ids = body.at("ids").get<std::vector<std::string>>();
    std::sort(ids.begin(), ids.end());
    auto expected = std::vector<std::string>{n1, n2};
    std::sort(expected.begin(), expected.end());
    CHECK(ids == expected);
    for (auto* s : {&s1, &s2}) {
      const auto e = s->expect("notification:read");
      CHECK(e.json().at("unreadCount") == 0);
      CHECK(e.json().at("ids").size() == 2);
    }
    const auto list = http_request(demo.port(), "GET", "/api/notifications?user=mo&unread=true");
    REQUIRE(list.status == 200);
    CHECK(list.json().at("notifications").empty());
    CHECK(list.json().at("unreadCount") == 0);
  }
  CHECK(other.quiet_for(std::chrono::milliseconds(200)));
}

TEST_CASE("read state: the list endpoint") {
  DemoProcess demo(unbatched());
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(publish(demo.port(), "lis", "n" + std::to_string(i)));
  REQUIRE(
      http_request(demo.port(), "POST", "/api/notifications/" + ids[1] + "/read?user=lis").status ==
      200);

  const auto all = http_request(demo.port(), "GET", "/api/notifications?user=lis");
  REQUIRE(all.status == 200);
  CHECK(all.header("Content-Type") == "application/json");
  CHECK(ids_of(all.json().at("notifications")) ==
        std::vector<std::string>{ids[3], ids[2], ids[1], ids[0]});
  CHECK(all.json().at("unreadCount") == 3);

  const auto unread =
      http_request(demo.port(), "GET", "/api/notifications?user=lis&unread=true&limit=2");
  REQUIRE(unread.status == 200);
  CHECK(ids_of(unread.json().at("notifications")) == std::vector<std::string>{ids[3], ids[2]});
  CHECK(unread.json().at("unreadCount") == 3);

  CHECK(http_request(demo.port(), "GET", "/api/notifications?user=lis&limit=abc").status == 400);
  CHECK(http_request(demo.port(), "GET", "/api/notifications?user=lis&limit=0").status == 400);
  CHECK(http_request(demo.port(), "GET", "/api/notifications?user=lis&limit=-3").status == 400);
  CHECK(http_request(demo.port(), "GET", "/api/notifications?user=lis&unread=maybe").status == 400);
  const auto big = http_request(demo.port(), "GET", "/api/notifications?user=lis&limit=100000");
  CHECK(big.status == 200);
  const auto anonymous = http_request(demo.port(), "GET", "/api/notifications");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.json().contains("error"));
}

TEST_CASE("read state: user ids and notification ids are percent-decoded") {
  DemoProcess demo(unbatched());
  const std::string user = "J\xC3\xB8rn & co/x+y";
  SseStream s(demo.port(), SseStream::target_for(user));
  REQUIRE(s.status() == 200);
  s.expect("init");
  const std::string id = publish(demo.port(), user, "hello");
  CHECK(s.expect("notification").json().at("userId") == user);

  const auto r =
      http_request(demo.port(), "POST",
                   "/api/notifications/" + url_encode(id) + "/read?user=" + url_encode(user));
  REQUIRE(r.status == 200);
  CHECK(r.json().at("ids") == json({id}));
  // %-escaped digits in the path segment decode to the id itself.
  const std::string id2 = publish(demo.port(), user, "again");
  std::string escaped_id;
  for (const char c : id2)
    escaped_id += "%3" + std::string(1, c);
  const auto r2 = http_request(
      demo.port(), "POST", "/api/notifications/" + escaped_id + "/read?user=" + url_encode(user));
  REQUIRE(r2.status == 200);
  CHECK(r2.json().at("ids") == json({id2}));
  // A broken escape is a bad request.
  const auto bad =
      http_request(demo.port(), "POST", "/api/notifications/" + id2 + "/read?user=%zz");
  CHECK(bad.status == 400);
  CHECK(bad.json().contains("error"));
}
