#include "crash_check.hpp"

#include "support.hpp"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

namespace itest {

using nlohmann::json;

void check_kill_loses_nothing(const std::vector<std::string>& args) {
  constexpr std::size_t users = 40;
  constexpr std::size_t kill_after = 1600;
  const auto user_of = [](std::size_t i) { return "k" + std::to_string(i % users); };

  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> acked;  // (user, id), in order
  std::vector<std::string> seen;                           // k0's stream before the kill
  {
    DemoProcess demo(args);
    SseStream stream(demo.port(), SseStream::target_for("k0"));
    REQUIRE(stream.status() == 200);
    stream.expect("init");
    std::thread publisher([&] {
      try {
        HttpClient client(demo.port());
        for (std::size_t i = 0;; ++i) {
          const auto user = user_of(i);
          const auto r = client.request(
              "POST", "/api/notifications",
              json{{"userId", user}, {"type", "comment"}, {"title", "n" + std::to_string(i)}}
                  .dump());
          if (r.status != 202)
            return;
          std::lock_guard lock(mutex);
          acked.emplace_back(user, r.json().at("id").get<std::string>());
        }
      } catch (const std::exception&) {
        // The server is gone: the publish in flight was not acknowledged.
      }
    });
    seen = read_ids(stream, 5);
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(mutex);
        if (acked.size() >= kill_after)
          break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const auto status = demo.kill_now();
    publisher.join();
    REQUIRE(status);
    CHECK(status->signal == SIGKILL);
  }
  REQUIRE(acked.size() >= kill_after);
  REQUIRE(acked.front().first == "k0");
  CHECK(seen.front() == acked.front().second);

  DemoProcess demo(args);
  std::map<std::string, std::set<std::string>> listed;
  for (std::size_t u = 0; u < users; ++u) {
    const auto user = user_of(u);
    const auto r =
        http_request(demo.port(), "GET", "/api/notifications?user=" + user + "&limit=500");
    REQUIRE(r.status == 200);
    const auto ids = ids_of(r.json().at("notifications"));
    listed[user].insert(ids.begin(), ids.end());
  }
  std::size_t missing = 0;
  std::uint64_t highest = 0;
  for (const auto& [user, id] : acked) {
    missing += listed[user].count(id) == 0 ? 1 : 0;
    highest = std::max<std::uint64_t>(highest, std::stoull(id));
  }
  CHECK(missing == 0);
  CHECK(std::stoull(publish(demo.port(), "k1", "after the kill")) > highest);

  // k0 resumes from the last id its stream saw: the acknowledged ones after it, in order,
  // then at most the publish in flight (stored, then killed before its answer).
  std::vector<std::string> expected;
  for (const auto& [user, id] : acked) {
    if (user == "k0" && std::stoull(id) > std::stoull(seen.back()))
      expected.push_back(id);
  }
  SseStream resumed(demo.port(), SseStream::target_for("k0"), {{"Last-Event-ID", seen.back()}});
  REQUIRE(resumed.status() == 200);
  CHECK(resumed.expect("init").id == seen.back());
  CHECK(read_ids(resumed, expected.size()) == expected);
}

}  // namespace itest
