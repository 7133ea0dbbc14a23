// notify-bench-sync-publish: what synchronous publish() (or mark_read()) calls from several
// threads of the host cost and how long each waits, with a store that may block.
//
// One process, the library only (no HTTP, no connection): --threads threads call
// hub.publish() one after another, each to a random one of 1,000 users, for --duration
// seconds after --warmup seconds. With --op mark each thread publishes to a random user
// (not timed) and then marks that notification read with hub.mark_read() (timed): the
// figures are then the marks'. Prints one JSON line: calls/s, each timed call's time (p50,
// p90, p99, max), the process's CPU time per timed call (user and system, from getrusage,
// over the measured phase, the untimed publishes included), and how many publish batches
// the hub's store thread made per timed call (publish_batches: publishes that did not write
// in the call).
//
//   notify-bench-sync-publish --store sqlite:PATH|redis://HOST:PORT[?publish_appends]
//                             [--threads 4]
//                             [--duration 5] [--warmup 1] [--op publish|mark]
#include <notify/hub.hpp>

#include "bench_store.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string store;
  std::size_t threads = 4;
  double duration_s = 5;
  double warmup_s = 1;
  bool mark = false;  // --op mark: time mark_read() calls
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc)
      throw std::invalid_argument(std::string(arg) + ": a value is missing");
    const std::string value = argv[++i];
    if (arg == "--store")
      o.store = value;
    else if (arg == "--threads")
      o.threads = std::stoul(value);
    else if (arg == "--duration")
      o.duration_s = std::stod(value);
    else if (arg == "--warmup")
      o.warmup_s = std::stod(value);
    else if (arg == "--op" && (value == "publish" || value == "mark"))
      o.mark = value == "mark";
    else
      throw std::invalid_argument(std::string(arg) + ": unknown option");
  }
  if (o.store.empty() || o.threads == 0 || o.duration_s <= 0 || o.warmup_s < 0)
    throw std::invalid_argument(
        "usage: --store sqlite:PATH|redis://HOST:PORT [--threads N] [--duration S]"
        " [--warmup S] [--op publish|mark]");
  return o;
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// One publishing thread: calls publish() until `stop`, noting the time of each call made
// while `measuring`.
struct Publisher {
  std::vector<double> call_ms;
  std::size_t failed = 0;

  void run(notify::NotificationHub& hub, bool mark, std::size_t seed,
           const std::atomic<bool>& measuring, const std::atomic<bool>& stop) {
    std::minstd_rand random(static_cast<std::minstd_rand::result_type>(seed + 1));
    while (!stop.load(std::memory_order_relaxed)) {
      notify::Notification draft;
      draft.user_id = "u" + std::to_string(random() % 1000);
      draft.type = "comment";
      draft.title = "published synchronously";
      draft.body = "a notification of one of the host's threads";
      const auto user = draft.user_id;
      std::string id;
      if (mark) {
        try {
          id = hub.publish(std::move(draft));
        } catch (const std::exception&) {
          ++failed;
          continue;
        }
      }
      const bool counted = measuring.load(std::memory_order_relaxed);
      const auto start = Clock::now();
      try {
        if (!mark)
          hub.publish(std::move(draft));
        else if (hub.mark_read(user, id).ids.size() != 1)
          throw std::runtime_error("the mark changed nothing");
      } catch (const std::exception&) {
        ++failed;
        continue;
      }
      if (counted)
        call_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
  }
};

int run(const Options& options) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });  // the hub's timers
  notify::NotificationHub hub(io.get_executor(), notify::HubOptions{},
                              bench::make_store(options.store));

  std::atomic<bool> measuring{false}, stop{false};
  std::vector<Publisher> publishers(options.threads);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < options.threads; ++i)
    threads.emplace_back([&, i] { publishers[i].run(hub, options.mark, i, measuring, stop); });

  std::this_thread::sleep_for(std::chrono::duration<double>(options.warmup_s));
  const auto batches_before = hub.metrics().publish_batches;
  const double cpu_before = cpu_seconds();
  const auto from = Clock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(options.duration_s));
  measuring = false;
  const auto until = Clock::now();
  const double cpu_after = cpu_seconds();
  const auto batches_after = hub.metrics().publish_batches;
  stop = true;
  for (auto& t : threads)
    t.join();
  hub.stop();
  work.reset();
  io_thread.join();

  std::vector<double> calls;
  std::size_t failed = 0;
  for (const auto& p : publishers) {
    calls.insert(calls.end(), p.call_ms.begin(), p.call_ms.end());
    failed += p.failed;
  }
  if (calls.empty())
    throw std::runtime_error("no call completed while measuring");
  const double seconds = std::chrono::duration<double>(until - from).count();
  const auto timed = static_cast<double>(calls.size());
  nlohmann::json report = {
      {"store", options.store.substr(0, options.store.find(':'))},
      {"op", options.mark ? "mark" : "publish"},
      {"threads", options.threads},
      {"calls_per_s", timed / seconds},
      {"call_ms",
       {{"p50", bench::percentile(calls, 0.5)},
        {"p90", bench::percentile(calls, 0.9)},
        {"p99", bench::percentile(calls, 0.99)},
        {"max", *std::max_element(calls.begin(), calls.end())}}},
      {"cpu_us_per_call", (cpu_after - cpu_before) * 1e6 / timed},
      {"publish_batches_per_call", static_cast<double>(batches_after - batches_before) / timed},
      {"failed", failed},
  };
  std::printf("%s\n", report.dump().c_str());
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-bench-sync-publish: %s\n", e.what());
    return 2;
  }
}
