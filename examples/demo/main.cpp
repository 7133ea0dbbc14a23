// notify-demo: a small HTTP server around notify::NotificationHub. See docs/PROTOCOL.md and
// `notify-demo --help`.
#include "api.hpp"
#include "http_connection.hpp"
#include "options.hpp"
#include "server.hpp"
#include "typing.hpp"

#include <notify/batched_writes.hpp>
#include <notify/hub.hpp>
#ifdef NOTIFY_DEMO_WITH_SQLITE
#include <notify/sqlite_store.hpp>
#endif
#ifdef NOTIFY_DEMO_WITH_REDIS
#include <notify/redis_bus.hpp>
#include <notify/redis_store.hpp>
#endif

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/signal_set.hpp>
#include <asio/ssl/context.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// After a shutdown signal, connections get this long to close before the io_context is
// stopped regardless.
constexpr std::chrono::seconds shutdown_grace{5};

std::string url_host(const asio::ip::address& address) {
  return address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
}

class ShutdownWatchdog {
 public:
  ~ShutdownWatchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

  // Stops every io_context of `contexts` unless the watchdog is destroyed (the run threads
  // returned) within `grace`.
  void arm(std::vector<asio::io_context*> contexts, std::chrono::seconds grace) {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || done_)
      return;
    thread_ = std::thread([this, contexts = std::move(contexts), grace] {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, grace, [this] { return done_; })) {
        std::fprintf(stderr, "notify-demo: connections did not close in time; stopping\n");
        for (auto* io : contexts)
          io->stop();
      }
    });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// The store --store names; null is the hub's default, a MemoryStore.
std::shared_ptr<notify::Store> make_store(const std::string& spec) {
  if (spec == "memory")
    return nullptr;
  const std::string path = spec.substr(spec.find(':') + 1);  // "sqlite:PATH"
#ifdef NOTIFY_DEMO_WITH_SQLITE
  return std::make_shared<notify::SqliteStore>(path);
#else
  throw std::runtime_error("--store " + spec +
                           ": this notify-demo was built without notify::sqlite");
#endif
}

#ifdef NOTIFY_DEMO_WITH_REDIS
// A --store or --bus value's options. In a cluster every key and channel carries the hash
// tag {notify}, so that all of them are in one slot (RedisOptions::cluster_nodes).
notify::RedisOptions redis_options(const std::string& spec) {
  auto options = notify::parse_redis_url(spec);
  if (!options.cluster_nodes.empty())
    options.prefix = "{notify}:";
  return options;
}

// Whether --store and --bus name the same Redis (by the first server each names).
bool same_redis(const notify::RedisOptions& a, const notify::RedisOptions& b) {
  const auto first = [](const notify::RedisOptions& o) {
    const auto& named = !o.cluster_nodes.empty() ? o.cluster_nodes
                        : !o.sentinels.empty()   ? o.sentinels
                                                 : std::vector<notify::RedisEndpoint>{};
    return named.empty() ? notify::RedisEndpoint{o.host, o.port} : named.front();
  };
  const auto fa = first(a), fb = first(b);
  return a.cluster_nodes.empty() == b.cluster_nodes.empty() &&
         a.sentinels.empty() == b.sentinels.empty() && a.sentinel_master == b.sentinel_master &&
         fa.host == fb.host && fa.port == fb.port;
}
#endif

// The bus --bus names; null is the hub's default, an InProcessBus.
// `executor`: where it runs (--bus-thread io), or empty for a thread of its own.
// `failed` is set when the bus reports a failure (they are written to stderr as by default).
std::shared_ptr<notify::Bus> make_bus(const std::string& spec, asio::any_io_executor executor,
                                      const std::shared_ptr<std::atomic<bool>>& failed) {
  if (!demo::is_redis_url(spec))
    return nullptr;
#ifdef NOTIFY_DEMO_WITH_REDIS
  notify::RedisBusOptions options;
  options.redis = redis_options(spec);
  options.executor = std::move(executor);
  options.on_error = [failed](std::string_view what) {
    std::fprintf(stderr, "notify: %.*s\n", static_cast<int>(what.size()), what.data());
    failed->store(true);
  };
  return std::make_shared<notify::RedisBus>(options);
#else
  (void)executor;
  (void)failed;
  throw std::runtime_error("--bus " + spec + ": this notify-demo was built without notify::redis");
#endif
}

// Waits until the bus is connected or has failed once (it keeps trying in the background), so
// that the first requests do not find it away when Redis is up: a stream opened before the
// bus connects is brought up to date by the repair that follows the connect, which replays
// what it already had. `io`: the bus runs on it (--bus-thread io) and has to be run here;
// null when the bus has a thread of its own.
void await_bus(asio::io_context* io, const notify::Bus& bus, const std::atomic<bool>& failed) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  const auto step = std::chrono::milliseconds(10);
  while (bus.state() != notify::BusState::connected && !failed.load() &&
         std::chrono::steady_clock::now() < deadline) {
    if (io != nullptr)
      io->run_one_for(step);
    else
      std::this_thread::sleep_for(step);
  }
  if (io != nullptr && io->stopped())
    io->restart();
}

// --store redis://...: with --bus on the same Redis, the store publishes notifications and
// read events itself, atomically with their sequence numbers (ordered across instances).
std::shared_ptr<notify::Store> make_redis_store(const std::string& spec, const std::string& bus,
                                                unsigned wait_replicas) {
#ifdef NOTIFY_DEMO_WITH_REDIS
  notify::RedisStoreOptions options;
  options.redis = redis_options(spec);
  options.wait_replicas = wait_replicas;
  if (demo::is_redis_url(bus))
    options.publish_appends = same_redis(options.redis, redis_options(bus));
  return std::make_shared<notify::RedisStore>(options);
#else
  (void)bus;
  (void)wait_replicas;
  throw std::runtime_error("--store " + spec +
                           ": this notify-demo was built without notify::redis");
#endif
}

int run(const demo::Options& options) {
  // One io_context per thread: a connection lives on one of them, so no strand is needed
  // and a fan-out is written by every thread in parallel.
  std::vector<std::unique_ptr<asio::io_context>> owned;
  std::vector<asio::io_context*> contexts;
  for (unsigned i = 0; i < options.threads; ++i) {
    owned.push_back(std::make_unique<asio::io_context>(1));
    contexts.push_back(owned.back().get());
    notify::set_batched_writes(*contexts.back(), options.batched_writes);
  }
  asio::io_context& io = *contexts.front();

  notify::HubOptions hub_options;
  hub_options.heartbeat_interval = options.heartbeat;
  hub_options.batch_window = options.batch;
  hub_options.max_connections = options.max_connections;
  auto store = demo::is_redis_url(options.store)
                   ? make_redis_store(options.store, options.bus, options.wait_replicas)
                   : make_store(options.store);
  const auto bus_failed = std::make_shared<std::atomic<bool>>(false);
  auto bus = make_bus(options.bus,
                      options.bus_thread == "io" ? io.get_executor() : asio::any_io_executor(),
                      bus_failed);
  notify::NotificationHub hub(io.get_executor(), hub_options, std::move(store), bus);
  if (bus)
    await_bus(options.bus_thread == "io" ? &io : nullptr, *bus, *bus_failed);

  demo::TypingOptions typing;
  typing.pairs = options.typing_pairs == "none" ? demo::TypingOptions::Pairs::none
                                                : demo::TypingOptions::Pairs::any;
  demo::TypingRelay::install(hub, typing);

  demo::ApiOptions api_options;
  api_options.allowed_origins = options.allowed_origins;
  api_options.session = options.session;
  demo::Api api(hub, api_options);
  std::error_code ec;
  demo::ConnectionLimits limits;
  limits.idle_timeout = options.idle_timeout;
  limits.request_timeout = options.request_timeout;
  limits.write_timeout = options.request_timeout;
  std::shared_ptr<asio::ssl::context> tls;
  if (!options.tls_cert.empty()) {
    tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    tls->use_certificate_chain_file(options.tls_cert, ec);
    if (!ec)
      tls->use_private_key_file(options.tls_key, asio::ssl::context::pem, ec);
    if (ec) {
      std::fprintf(stderr, "notify-demo: TLS certificate or key: %s\n", ec.message().c_str());
      return 1;
    }
  }
  demo::Server server(contexts, api, limits, tls);

  const auto address = asio::ip::make_address(options.bind, ec);
  if (ec) {
    std::fprintf(stderr, "notify-demo: bad address %s\n", options.bind.c_str());
    return 2;
  }
  const auto endpoint = server.listen(address, options.port, ec);
  if (ec) {
    std::fprintf(stderr, "notify-demo: cannot listen on %s port %u: %s\n", options.bind.c_str(),
                 static_cast<unsigned>(options.port), ec.message().c_str());
    return 1;
  }

  // The other io_contexts have no work until a connection arrives; keep them running.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  for (auto* context : contexts)
    keep_running.push_back(asio::make_work_guard(*context));

  ShutdownWatchdog watchdog;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code wait_ec, int signal_number) {
    if (wait_ec)
      return;
    std::fprintf(stderr, "notify-demo: signal %d, shutting down\n", signal_number);
    hub.stop();
    server.stop();
    for (auto& guard : keep_running)
      guard.reset();
    watchdog.arm(contexts, shutdown_grace);
  });

  std::printf("listening on %s://%s:%u\n", tls ? "https" : "http",
              url_host(endpoint.address()).c_str(), static_cast<unsigned>(endpoint.port()));
  std::fflush(stdout);

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < contexts.size(); ++i)
    threads.emplace_back([context = contexts[i]] { context->run(); });
  io.run();
  for (auto& t : threads)
    t.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string program = argc > 0 && argv[0] != nullptr ? argv[0] : "notify-demo";
  const auto parsed =
      demo::parse_options(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
  switch (parsed.action) {
    case demo::ParsedOptions::Action::help:
      std::fputs(demo::usage(program).c_str(), stdout);
      return 0;
    case demo::ParsedOptions::Action::error:
      std::fprintf(stderr, "notify-demo: %s\n%s", parsed.error.c_str(),
                   demo::usage(program).c_str());
      return 2;
    case demo::ParsedOptions::Action::run:
      break;
  }
  // A client or a closed stdout must not kill the server.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    return run(parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-demo: %s\n", e.what());
    return 1;
  }
}
