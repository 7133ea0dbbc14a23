// Resuming a stream: Last-Event-ID, ?lastEventId=, unknown cursors.
#include "support.hpp"

using namespace itest;
using nlohmann::json;

namespace {

// The resume scenario: 3 read, disconnect, 2 missed, reconnect with `reconnect(cursor)`.
template <typename Reconnect>
void check_resume(Reconnect reconnect) {
  DemoProcess demo(unbatched());
  std::vector<std::string> seen;
  {
    SseStream first(demo.port(), SseStream::target_for("rita"));
    REQUIRE(first.status() == 200);
    first.expect("init");
    std::vector<std::string> published;
    for (int i = 0; i < 3; ++i)
      published.push_back(publish(demo.port(), "rita", "n" + std::to_string(i)));
    seen = read_ids(first, 3);
    CHECK(seen == published);
  }  // disconnects
  std::vector<std::string> missed;
  for (int i = 3; i < 5; ++i)
    missed.push_back(publish(demo.port(), "rita", "n" + std::to_string(i)));

  SseStream again = reconnect(demo.port(), seen.back());
  REQUIRE(again.status() == 200);
  const auto init = again.expect("init");
  CHECK(init.id == seen.back());
  const json state = init.json();
  // The state at the cursor: the 3 seen ones, newest first.
  CHECK(state.at("unreadCount") == 3);
  CHECK(ids_of(state.at("notifications")) == std::vector<std::string>{seen[2], seen[1], seen[0]});

  CHECK(read_ids(again, 2) == missed);
  const std::string live = publish(demo.port(), "rita", "live");
  const auto e = again.expect("notification");
  CHECK(e.id == live);
  CHECK(again.quiet_for(std::chrono::milliseconds(200)));
}

}  // namespace

TEST_CASE("resume: Last-Event-ID gives init, exactly the missed ones in order, then live") {
  check_resume([](std::uint16_t port, const std::string& cursor) {
    return SseStream(port, SseStream::target_for("rita"), {{"Last-Event-ID", cursor}});
  });
}

TEST_CASE("resume: ?lastEventId= works the same") {
  check_resume([](std::uint16_t port, const std::string& cursor) {
    return SseStream(port, SseStream::target_for("rita") + "&lastEventId=" + url_encode(cursor));
  });
}

TEST_CASE("resume: Last-Event-ID wins over ?lastEventId=") {
  DemoProcess demo(unbatched());
  const std::string a = publish(demo.port(), "lee", "a");
  const std::string b = publish(demo.port(), "lee", "b");
  SseStream s(demo.port(), SseStream::target_for("lee") + "&lastEventId=999999",
              {{"Last-Event-ID", a}});
  REQUIRE(s.status() == 200);
  CHECK(s.expect("init").id == a);
  CHECK(s.expect("notification").id == b);
}

TEST_CASE("resume: an empty Last-Event-ID leaves ?lastEventId= in charge") {
  check_resume([](std::uint16_t port, const std::string& cursor) {
    return SseStream(port, SseStream::target_for("rita") + "&lastEventId=" + url_encode(cursor),
                     {{"Last-Event-ID", ""}});
  });
}

TEST_CASE("resume: spaces after Last-Event-ID's value are not part of it") {
  check_resume([](std::uint16_t port, const std::string& cursor) {
    return SseStream(port, SseStream::target_for("rita"), {{"Last-Event-ID", cursor + " \t "}});
  });
}

TEST_CASE(
    "resume: a cursor from before a restart of a demo on the memory store gets "
    "notifications:reset, however many notifications the new process has sent") {
  std::string cursor;
  {
    DemoProcess before(unbatched());
    for (int i = 0; i < 3; ++i)
      cursor = publish(before.port(), "phoenix", "before " + std::to_string(i));
  }
  DemoProcess after(unbatched());
  std::vector<std::string> sent;
  for (int i = 0; i < 5; ++i)
    sent.push_back(publish(after.port(), "phoenix", "after " + std::to_string(i)));
  SseStream s(after.port(), SseStream::target_for("phoenix"), {{"Last-Event-ID", cursor}});
  REQUIRE(s.status() == 200);
  const auto e = s.expect("notifications:reset");
  CHECK(e.id == sent.back());
  CHECK(e.json().at("unreadCount") == 5);
  CHECK(ids_of(e.json().at("notifications")) ==
        std::vector<std::string>{sent[4], sent[3], sent[2], sent[1], sent[0]});
}

TEST_CASE("resume: an unknown cursor gets notifications:reset first") {
  DemoProcess demo(unbatched());
  const std::string known = publish(demo.port(), "cy", "one");

  SUBCASE("ahead of everything") {
    SseStream s(demo.port(), SseStream::target_for("cy"), {{"Last-Event-ID", "999999"}});
    REQUIRE(s.status() == 200);
    const auto e = s.expect("notifications:reset");
    const json state = e.json();
    CHECK(state.at("unreadCount") == 1);
    CHECK(ids_of(state.at("notifications")) == std::vector<std::string>{known});
  }
  SUBCASE("not a number") {
    SseStream s(demo.port(), SseStream::target_for("cy") + "&lastEventId=abc");
    REQUIRE(s.status() == 200);
    const auto e = s.expect("notifications:reset");
    CHECK(e.json().at("unreadCount") == 1);
  }
  SUBCASE("and live events follow the reset") {
    SseStream s(demo.port(), SseStream::target_for("cy"), {{"Last-Event-ID", "abc"}});
    s.expect("notifications:reset");
    const std::string live = publish(demo.port(), "cy", "two");
    CHECK(s.expect("notification").id == live);
  }
}
