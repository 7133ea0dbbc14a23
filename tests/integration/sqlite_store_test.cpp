// notify-demo --store sqlite:PATH: notifications and the sequence survive a restart.
#include "crash_check.hpp"
#include "support.hpp"

#ifdef NOTIFY_DEMO_WITH_SQLITE

#include "../support/temp_dir.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace itest;
using nlohmann::json;

using TempDir = testsupport::TempDir;

TEST_CASE("sqlite demo: a restart keeps the snapshot, and resuming gives exactly what was missed") {
  TempDir dir;
  const std::vector<std::string> args = unbatched({"--store", "sqlite:" + dir.file("demo.db")});

  std::vector<std::string> seen;    // delivered to the client before the restart
  std::vector<std::string> missed;  // published after the client's cursor
  {
    DemoProcess demo(args);
    SseStream stream(demo.port(), SseStream::target_for("ann"));
    REQUIRE(stream.status() == 200);
    stream.expect("init");
    for (int i = 0; i < 3; ++i)
      seen.push_back(publish(demo.port(), "ann", "seen " + std::to_string(i)));
    CHECK(read_ids(stream, 3) == seen);
    stream.close();
    missed.push_back(publish(demo.port(), "ann", "missed before the restart"));
    publish(demo.port(), "bob", "someone else's");
    const auto status = demo.terminate(std::chrono::seconds(5));
    REQUIRE(status);
    CHECK(status->exited);
    CHECK(status->code == 0);
  }

  DemoProcess demo(args);
  missed.push_back(publish(demo.port(), "ann", "missed after the restart"));
  CHECK(std::stoull(missed[1]) > std::stoull(missed[0]));  // the sequence went on

  // Without a cursor: everything unread, newest first.
  const auto listed = http_request(demo.port(), "GET", "/api/notifications?user=ann").json();
  CHECK(listed.at("unreadCount") == 5);
  CHECK(ids_of(listed.at("notifications")) ==
        std::vector<std::string>{missed[1], missed[0], seen[2], seen[1], seen[0]});
  SseStream fresh(demo.port(), SseStream::target_for("ann"));
  const auto init = fresh.expect("init").json();
  CHECK(init.at("unreadCount") == 5);
  CHECK(ids_of(init.at("notifications")).size() == 5);

  // From the cursor taken before the restart: the state at it, then exactly the missed ones.
  SseStream resumed(demo.port(), SseStream::target_for("ann"), {{"Last-Event-ID", seen.back()}});
  REQUIRE(resumed.status() == 200);
  const auto at_cursor = resumed.expect("init");
  CHECK(at_cursor.id == seen.back());
  CHECK(at_cursor.json().at("unreadCount") == 3);
  CHECK(ids_of(at_cursor.json().at("notifications")) ==
        std::vector<std::string>{seen[2], seen[1], seen[0]});
  CHECK(read_ids(resumed, 2) == missed);
  CHECK(resumed.quiet_for(std::chrono::milliseconds(200)));

  const std::string live = publish(demo.port(), "ann", "live");
  CHECK(resumed.expect("notification").id == live);
  CHECK(fresh.expect("notification").id == live);
}

// With SQLite the demo answers a POST once the hub's store thread has committed it, many
// requests per commit (async_publish): each request still gets its own answer, in order on
// its connection, and the stream gets every notification in id order.
TEST_CASE("sqlite demo: concurrent publishes on keep-alive connections are each answered once") {
  TempDir dir;
  DemoProcess demo(unbatched({"--store", "sqlite:" + dir.file("demo.db")}));
  SseStream carol(demo.port(), SseStream::target_for("carol"));
  SseStream dave(demo.port(), SseStream::target_for("dave"));
  carol.expect("init");
  dave.expect("init");

  constexpr int connections = 4;
  constexpr int per_connection = 40;
  std::vector<std::vector<std::string>> acked(connections);
  std::vector<std::thread> publishers;
  for (int c = 0; c < connections; ++c) {
    publishers.emplace_back([&, c] {
      HttpClient client(demo.port());
      for (int i = 0; i < per_connection; ++i) {
        // Every tenth one goes to both users (userIds), the others to carol.
        const bool both = i % 10 == 9;
        const json body =
            both ? json{{"userIds", {"carol", "dave"}}, {"type", "comment"}, {"title", "to both"}}
                 : json{{"userId", "carol"},
                        {"type", "comment"},
                        {"title", std::to_string(c) + "-" + std::to_string(i)}};
        const std::string text = body.dump();
        const std::string request =
            "POST /api/notifications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: " +
            std::to_string(text.size()) + "\r\n\r\n" + text;
        if (!client.send_raw(request))
          return;  // the checks below count what is missing
        const auto r = client.read_response();
        if (!r || r->status != 202)
          return;
        const json answer = r->json();
        if (both) {
          for (const auto& id : answer.at("ids"))
            acked[c].push_back(id.get<std::string>());
        } else {
          acked[c].push_back(answer.at("id").get<std::string>());
        }
      }
    });
  }
  for (auto& p : publishers)
    p.join();

  std::set<std::string> all;
  for (const auto& ids : acked) {
    CHECK(ids.size() == per_connection + per_connection / 10);  // none failed or went missing
    all.insert(ids.begin(), ids.end());
  }
  CHECK(all.size() == connections * (per_connection + per_connection / 10));
  const auto carol_ids = read_ids(carol, connections * per_connection);
  CHECK(std::is_sorted(carol_ids.begin(), carol_ids.end(), [](const auto& a, const auto& b) {
    return std::stoull(a) < std::stoull(b);
  }));
  const auto dave_ids = read_ids(dave, connections * per_connection / 10);
  for (const auto& id : carol_ids)
    CHECK(all.count(id) == 1);
  for (const auto& id : dave_ids)
    CHECK(all.count(id) == 1);

  // The store thread wrote them: a store call counted for each batch.
  const auto metrics = http_request(demo.port(), "GET", "/metrics");
  const std::string sample = "\nnotify_publish_batches_total ";
  const auto at = metrics.body.find(sample);
  REQUIRE(at != std::string::npos);
  const auto batches = std::stoull(metrics.body.substr(at + sample.size()));
  CHECK(batches >= 1);
  CHECK(batches <= connections * per_connection);
  MESSAGE("store calls for " << connections * per_connection << " POSTs: " << batches);
}

TEST_CASE("sqlite demo: a process killed while publishing loses no acknowledged notification") {
  // 1,600 appends write ≈ 6 times the 1,000 pages after which the store checkpoints, so the
  // kill may come while the checkpoint thread copies the log.
  TempDir dir;
  check_kill_loses_nothing(unbatched({"--store", "sqlite:" + dir.file("demo.db")}));
}

TEST_CASE("sqlite demo: read state survives a restart") {
  TempDir dir;
  const std::vector<std::string> args = unbatched({"--store", "sqlite:" + dir.file("demo.db")});
  std::string read_id;
  {
    DemoProcess demo(args);
    read_id = publish(demo.port(), "cleo", "to be read");
    publish(demo.port(), "cleo", "stays unread");
    const auto r =
        http_request(demo.port(), "POST", "/api/notifications/" + read_id + "/read?user=cleo");
    REQUIRE(r.status == 200);
    CHECK(r.json().at("unreadCount") == 1);
  }
  DemoProcess demo(args);
  const auto listed = http_request(demo.port(), "GET", "/api/notifications?user=cleo").json();
  CHECK(listed.at("unreadCount") == 1);
  REQUIRE(listed.at("notifications").size() == 2);
  CHECK(listed.at("notifications")[1].at("id") == read_id);
  CHECK_FALSE(listed.at("notifications")[1].at("readAt").is_null());
}

TEST_CASE("sqlite demo: a database that cannot be opened stops the demo with SQLite's message") {
  TempDir dir;
  const auto r = run_to_completion(
      NOTIFY_DEMO_PATH, {"--port", "0", "--store", "sqlite:" + dir.file("no/such/dir.db")},
      std::chrono::seconds(10));
  CHECK(r.status.exited);
  CHECK(r.status.code == 1);
  CHECK(r.err.find("unable to open database file") != std::string::npos);
}

TEST_CASE("sqlite demo: a second demo on the same file is refused while the first runs") {
  // Both would store correctly, but each delivers live only what it publishes itself: a
  // stream on one would miss what the other published, and hold a cursor past it.
  TempDir dir;
  const auto store = "sqlite:" + dir.file("shared.db");
  DemoProcess first(unbatched({"--store", store}));
  const auto second = run_to_completion(NOTIFY_DEMO_PATH, {"--port", "0", "--store", store},
                                        std::chrono::seconds(10));
  CHECK(second.status.exited);
  CHECK(second.status.code == 1);
  CHECK(second.err.find("another SqliteStore has the file open") != std::string::npos);
  CHECK(publish(first.port(), "still", "the first goes on").size() > 0);
  REQUIRE(first.terminate(std::chrono::seconds(10)));
  DemoProcess after(unbatched({"--store", store}));  // the file is free once it has gone
  SseStream s(after.port(), SseStream::target_for("still"));
  CHECK(s.expect("init").json().at("unreadCount") == 1);
}

#endif  // NOTIFY_DEMO_WITH_SQLITE
