// notify-bench-queue-wait: how long a new connection waits for its `init` while the hub's
// store thread has a deep queue of async publishes.
//
// One process, one io thread, the library only (no HTTP): a producer keeps --in-flight
// async_publish() calls queued (each completion queues the next), and after a second of
// that, --connections SSE sinks attach one after another, --gap-ms apart, each over a
// CallbackTransport that notes when its `init` arrives. Prints one JSON line: the attach →
// init times (p50, p90, p99, max), the queue depth seen at each attach, and the publishes/s
// stored meanwhile.
//
//   notify-bench-queue-wait --store sqlite:PATH|redis://HOST:PORT [--in-flight 5000]
//                           [--connections 40] [--gap-ms 50]
#include <notify/callback_transport.hpp>
#include <notify/hub.hpp>
#include <notify/sse_sink.hpp>

#include "bench_store.hpp"

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string store;
  std::size_t in_flight = 5000;
  std::size_t connections = 40;
  std::chrono::milliseconds gap{50};
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
    else if (arg == "--in-flight")
      o.in_flight = std::stoul(value);
    else if (arg == "--connections")
      o.connections = std::stoul(value);
    else if (arg == "--gap-ms")
      o.gap = std::chrono::milliseconds(std::stoul(value));
    else
      throw std::invalid_argument(std::string(arg) + ": unknown option");
  }
  if (o.store.empty() || o.in_flight == 0 || o.connections == 0)
    throw std::invalid_argument(
        "usage: --store sqlite:PATH|redis://HOST:PORT [--in-flight N]"
        " [--connections M] [--gap-ms G]");
  return o;
}

// Keeps `in_flight` async publishes queued until stop().
class Producer {
 public:
  Producer(notify::NotificationHub& hub, std::size_t in_flight)
      : hub_(hub), in_flight_(in_flight) {}
  void start() {
    for (std::size_t i = 0; i < in_flight_; ++i)
      next();
  }
  void stop() { stopping_ = true; }
  std::size_t stored() const { return stored_; }
  std::size_t failed() const { return failed_; }
  bool idle() const { return stored_ + failed_ == sequence_; }

 private:
  void next() {
    notify::Notification draft;
    draft.user_id = "p" + std::to_string(sequence_++ % 1000);
    draft.type = "comment";
    draft.title = "queued behind the store";
    draft.body = "a notification of the producer";
    hub_.async_publish(std::move(draft), [this](std::exception_ptr error, std::string) {
      ++(error ? failed_ : stored_);
      if (!stopping_)
        next();
    });
  }
  notify::NotificationHub& hub_;
  std::size_t in_flight_;
  std::size_t sequence_ = 0, stored_ = 0, failed_ = 0;
  bool stopping_ = false;
};

// Attaches one connection after another and notes each one's wait for its `init`.
class Subscribers {
 public:
  Subscribers(asio::io_context& io, notify::NotificationHub& hub, const Options& options,
              std::function<void()> done)
      : io_(io), hub_(hub), options_(options), timer_(io), done_(std::move(done)) {}
  void start() { attach_next(); }
  const std::vector<double>& waits_ms() const { return waits_ms_; }
  const std::vector<double>& depths() const { return depths_; }

 private:
  void attach_next() {
    const auto index = waits_ms_.size();
    const auto attached_at = Clock::now();
    auto got_init = std::make_shared<bool>(false);
    auto transport = std::make_shared<notify::CallbackTransport>(
        io_.get_executor(), [this, attached_at, got_init](std::string_view chunk) {
          if (!*got_init && chunk.find("event: init\n") != std::string_view::npos) {
            *got_init = true;
            waits_ms_.push_back(
                std::chrono::duration<double, std::milli>(Clock::now() - attached_at).count());
            asio::post(io_, [this] { after_init(); });
          }
          return true;
        });
    sink_ = notify::SseSink::create(transport);
    depths_.push_back(static_cast<double>(hub_.metrics().publishes_pending));
    hub_.attach("s" + std::to_string(index), sink_);
  }
  void after_init() {
    sink_->close();
    if (waits_ms_.size() == options_.connections) {
      done_();
      return;
    }
    timer_.expires_after(options_.gap);
    timer_.async_wait([this](std::error_code ec) {
      if (!ec)
        attach_next();
    });
  }
  asio::io_context& io_;
  notify::NotificationHub& hub_;
  const Options& options_;
  asio::steady_timer timer_;
  std::function<void()> done_;
  std::shared_ptr<notify::SseSink> sink_;
  std::vector<double> waits_ms_, depths_;
};

int run(const Options& options) {
  asio::io_context io;
  notify::HubOptions hub_options;
  hub_options.max_pending_publishes = options.in_flight + 100;
  notify::NotificationHub hub(io.get_executor(), hub_options, bench::make_store(options.store));

  Producer producer(hub, options.in_flight);
  Clock::time_point measuring_from, measured_until;
  std::size_t stored_before = 0, stored_after = 0;
  asio::steady_timer drain(io);
  std::function<void()> stop_when_idle = [&] {
    if (producer.idle()) {
      io.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](std::error_code) { stop_when_idle(); });
  };
  Subscribers subscribers(io, hub, options, [&] {
    measured_until = Clock::now();
    stored_after = producer.stored();
    producer.stop();
    stop_when_idle();
  });
  producer.start();
  asio::steady_timer warmup(io, std::chrono::seconds(1));
  warmup.async_wait([&](std::error_code) {
    measuring_from = Clock::now();
    stored_before = producer.stored();
    subscribers.start();
  });
  io.run();  // until every connection had its `init` and every publish completed
  hub.stop();

  const auto& waits = subscribers.waits_ms();
  const double seconds = std::chrono::duration<double>(measured_until - measuring_from).count();
  nlohmann::json report = {
      {"store", options.store.substr(0, options.store.find(':'))},
      {"in_flight", options.in_flight},
      {"connections", waits.size()},
      {"init_wait_ms",
       {{"p50", bench::percentile(waits, 0.5)},
        {"p90", bench::percentile(waits, 0.9)},
        {"p99", bench::percentile(waits, 0.99)},
        {"max", *std::max_element(waits.begin(), waits.end())}}},
      {"queue_depth_at_attach", {{"p50", bench::percentile(subscribers.depths(), 0.5)}}},
      {"publishes_per_s", static_cast<double>(stored_after - stored_before) / seconds},
      {"publishes_failed", producer.failed()},
  };
  std::printf("%s\n", report.dump().c_str());
  return producer.failed() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-bench-queue-wait: %s\n", e.what());
    return 2;
  }
}
