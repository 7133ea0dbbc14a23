// Many publishers at once: every stream gets every notification once, in order, and a
// stream that connects meanwhile misses and repeats nothing.
#include "support.hpp"

#include "../support/temp_dir.hpp"

#include <algorithm>
#include <cstdint>
#include <future>
#include <thread>

using namespace itest;
using nlohmann::json;

namespace {

using Posters = std::vector<std::future<std::vector<std::string>>>;

// `publishers` threads, each on its own keep-alive connection, POST `per_publisher`
// notifications to `user` one after the other; each future holds the ids answered.
Posters start_posters(std::uint16_t port, const std::string& user, int publishers,
                      int per_publisher) {
  Posters posters;
  for (int p = 0; p < publishers; ++p) {
    posters.push_back(std::async(std::launch::async, [=] {
      std::vector<std::string> ids;
      HttpClient client(port);
      for (int i = 0; i < per_publisher; ++i) {
        const json j = {{"userId", user},
                        {"type", "comment"},
                        {"title", "p" + std::to_string(p) + "-" + std::to_string(i)}};
        const auto r = client.request("POST", "/api/notifications", j.dump());
        if (r.status != 202)
          break;
        ids.push_back(r.json().at("id").get<std::string>());
      }
      return ids;
    }));
  }
  return posters;
}

// Every id the posters were answered, in sequence order; each poster must have had all its
// notifications accepted.
std::vector<std::string> published_ids(Posters& posters, int per_publisher) {
  std::vector<std::string> published;
  for (auto& f : posters) {
    const auto ids = f.get();
    CHECK(ids.size() == static_cast<std::size_t>(per_publisher));
    published.insert(published.end(), ids.begin(), ids.end());
  }
  std::sort(published.begin(), published.end(),
            [](const auto& a, const auto& b) { return std::stoull(a) < std::stoull(b); });
  return published;
}

}  // namespace

TEST_SUITE("concurrency") {
  TEST_CASE("concurrency: 4 publishing threads, 3 streams, every id exactly once in order") {
    constexpr int publishers = 4;
    constexpr int per_publisher = 50;
    constexpr std::size_t total = publishers * per_publisher;
    const std::string user = "crowd";

    DemoProcess demo(unbatched({"--threads", "2"}));
    std::vector<std::unique_ptr<SseStream>> streams;
    for (int i = 0; i < 3; ++i) {
      streams.push_back(std::make_unique<SseStream>(demo.port(), SseStream::target_for(user)));
      REQUIRE(streams.back()->status() == 200);
      streams.back()->expect("init");
    }

    // Readers: collect ids (and any unexpected event) until `total` arrived or time is up.
    struct Received {
      std::vector<std::string> ids;
      std::vector<std::string> unexpected;
    };
    std::vector<std::future<Received>> readers;
    for (auto& s : streams) {
      readers.push_back(std::async(std::launch::async, [&s = *s] {
        Received got;
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while (got.ids.size() < total && Clock::now() < deadline) {
          const auto left =
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
          auto e = s.next(left);
          if (!e)
            break;
          if (e->type == "notification") {
            got.ids.push_back(e->id.value_or(""));
          } else if (e->type == "notifications:batch") {
            for (const auto& n : e->json())
              got.ids.push_back(n.at("id").get<std::string>());
          } else {
            got.unexpected.push_back(e->type + " " + e->data);
          }
        }
        return got;
      }));
    }

    auto posters = start_posters(demo.port(), user, publishers, per_publisher);

    const auto published = published_ids(posters, per_publisher);
    auto numeric = [](const std::string& id) { return std::stoull(id); };
    REQUIRE(published.size() == total);
    CHECK(std::adjacent_find(published.begin(), published.end()) == published.end());

    for (std::size_t i = 0; i < readers.size(); ++i) {
      const Received got = readers[i].get();
      CAPTURE(i);
      CHECK(got.unexpected.empty());
      if (!got.unexpected.empty())
        MESSAGE("first unexpected event: " << got.unexpected.front());
      CHECK(got.ids.size() == total);
      // Increasing order, hence no duplicate; and the same set as published.
      bool increasing = true;
      for (std::size_t k = 1; k < got.ids.size(); ++k) {
        if (numeric(got.ids[k - 1]) >= numeric(got.ids[k])) {
          increasing = false;
          MESSAGE("out of order at " << k << ": " << got.ids[k - 1] << " then " << got.ids[k]);
          break;
        }
      }
      CHECK(increasing);
      CHECK(got.ids == published);
    }
  }

  // The streams' first reads go through the hub's store thread (SQLite may block), while the
  // publishes queue there too, and the two io threads write the streams.
  TEST_CASE(
      "concurrency: sqlite, 2 threads: streams that connect while 4 threads publish miss "
      "and repeat nothing") {
    constexpr int publishers = 4;
    constexpr int per_publisher = 50;
    const std::string user = "latecomer";
    testsupport::TempDir dir;
    DemoProcess demo(unbatched({"--threads", "2", "--store", "sqlite:" + dir.file("crowd.db")}));

    auto posters = start_posters(demo.port(), user, publishers, per_publisher);
    // Streams connect one after the other while the publishers run; each keeps what its
    // init listed (oldest first) and reads the rest once everything is published.
    std::vector<std::unique_ptr<SseStream>> streams;
    std::vector<std::vector<std::string>> seen;
    for (int i = 0; i < 6; ++i) {
      streams.push_back(std::make_unique<SseStream>(demo.port(), SseStream::target_for(user)));
      REQUIRE(streams.back()->status() == 200);
      const auto init = streams.back()->expect("init");
      auto listed = ids_of(init.json().at("notifications"));
      std::reverse(listed.begin(), listed.end());
      seen.push_back(std::move(listed));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    const auto published = published_ids(posters, per_publisher);
    REQUIRE(published.size() == static_cast<std::size_t>(publishers * per_publisher));

    for (std::size_t i = 0; i < streams.size(); ++i) {
      CAPTURE(i);
      auto& got = seen[i];
      while (got.empty() || got.back() != published.back()) {
        const auto e = streams[i]->next(std::chrono::seconds(10));
        if (!e)
          break;
        REQUIRE(e->type == "notification");
        got.push_back(e->id.value_or(""));
      }
      // The init lists at most 50: from there on, every notification after it, once, in order.
      REQUIRE(!got.empty());
      REQUIRE(got.size() <= published.size());
      const std::vector<std::string> tail(published.end() - static_cast<long>(got.size()),
                                          published.end());
      CHECK(got == tail);
    }
  }
}
