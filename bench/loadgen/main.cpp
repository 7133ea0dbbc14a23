// notify-loadgen: drives notify-demo (or anything with the same HTTP API, such as the Node
// peer in bench/peers/node) with C subscribers and K publishers, and reports deliveries/s,
// loss, latency, the server's CPU time per delivery and its memory per connection.
//
//   notify-loadgen --scenario fanout --protocol sse --connections 1000 --duration 10
//                  --spawn build/release/examples/demo/notify-demo --port 0 --batch-ms 0
//
// One JSON line on stdout per run (and appended to --json FILE); a table on stderr.
// See docs/BENCHMARKS.md and bench/run.
#include "common.hpp"
#include "proc.hpp"
#include "publisher.hpp"
#include "spawn.hpp"
#include "subscriber.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <csignal>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace loadgen {
namespace {

struct Options {
  std::string scenario = "fanout";  // idle | fanout | unicast | cluster
  Protocol protocol = Protocol::sse;
  std::string url;          // the subscribers' server
  std::string publish_url;  // where publishes go (cluster); default: url
  pid_t server_pid = 0;
  pid_t publish_pid = 0;           // cluster: the publishers' server
  std::vector<std::string> spawn;  // command that starts the server
  std::size_t connections = 1000;
  std::size_t events = 0;      // publishes in the measured phase (0: --duration decides)
  double duration = 0;         // seconds of publishing (idle: of holding)
  double rate = 0;             // fanout: deliveries/s; unicast: publishes/s; 0: flat out
  std::size_t publishers = 0;  // 0: 1 for fanout, 8 for unicast
  std::size_t window = 32;     // fanout flat out: broadcasts not yet delivered everywhere
  std::size_t warmup = 0;      // publishes before the measured phase (not counted)
  std::size_t connect_concurrency = 256;
  std::size_t source_addresses = 32;
  double connect_timeout = 120;
  double drain_timeout = 5;
  std::string label;
  std::string json_path;
  std::string cdf_path;
  bool allow_loss = false;
  bool deferred_reads = false;    // paced only: note arrivals, read everything at the end
  bool idempotency_keys = false;  // every POST carries an Idempotency-Key of its own
};

// With deferred reads, the wait for arrivals ends after this long without a new one (the
// collections run every millisecond); what is still missing is then waited for as usual.
constexpr double deferred_quiet_s = 0.1;

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(
      stderr,
      "notify-loadgen: %s\n(see the comment at the top of bench/loadgen/main.cpp, or --help)\n",
      message.c_str());
  std::exit(2);
}

const char* const help_text =
    "usage: notify-loadgen [options] [--spawn SERVER ARGS...]\n"
    "  --scenario idle|fanout|unicast|cluster   (default fanout)\n"
    "  --protocol sse|ws                         (default sse)\n"
    "  --url http://127.0.0.1:PORT               the server (or --spawn)\n"
    "  --server-pid PID                          its process, for CPU and RSS\n"
    "  --publish-url URL --publish-pid PID       cluster: publishes go to this instance\n"
    "  --connections C                           subscribers u0..u{C-1} (default 1000)\n"
    "  --events N                                publishes in the measured phase\n"
    "  --duration S                              seconds of publishing (idle: holding)\n"
    "  --rate R                                  fanout: deliveries/s, unicast: publishes/s; 0 = "
    "flat out\n"
    "  --publishers K                            keep-alive publisher connections (1 fanout, 8 "
    "unicast)\n"
    "  --window W                                fanout flat out: broadcasts in flight (32)\n"
    "  --warmup N                                publishes before measuring (not counted)\n"
    "  --connect-concurrency N, --source-addresses N, --connect-timeout S, --drain-timeout S\n"
    "  --label NAME, --json FILE (append), --cdf FILE (latency CDF), --allow-loss\n"
    "  --deferred-reads                          paced (--rate): subscribers note when bytes\n"
    "                                            arrive (every 1 ms) and read them after each\n"
    "                                            phase, so a delivery costs this process little\n"
    "  --idempotency-keys                        every POST carries an Idempotency-Key of its\n"
    "                                            own (what keeping keys costs the server)\n"
    "  --spawn CMD ARGS...                       start the server (must print 'listening on "
    "URL');\n"
    "                                            everything after --spawn is its command line\n"
    "Exit status: 0; 1 lost or duplicated notifications or failed connections; 2 usage or setup.\n";

template <typename T>
T number(const std::string& flag, const std::string& v) {
  T value{};
  if constexpr (std::is_floating_point_v<T>) {
    char* end = nullptr;
    value = static_cast<T>(std::strtod(v.c_str(), &end));
    if (v.empty() || *end != '\0' || value < 0)
      usage_error(flag + ": '" + v + "' is not a number");
  } else {
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc() || p != v.data() + v.size())
      usage_error(flag + ": '" + v + "' is not a count");
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(help_text, stdout);
      std::exit(0);
    }
    if (flag == "--spawn") {
      for (++i; i < argc; ++i)
        o.spawn.emplace_back(argv[i]);
      if (o.spawn.empty())
        usage_error("--spawn needs a command");
      break;
    }
    if (flag == "--allow-loss") {
      o.allow_loss = true;
      continue;
    }
    if (flag == "--deferred-reads") {
      o.deferred_reads = true;
      continue;
    }
    if (flag == "--idempotency-keys") {
      o.idempotency_keys = true;
      continue;
    }
    std::string value;
    if (const auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    } else {
      if (i + 1 >= argc)
        usage_error(flag + " needs a value");
      value = argv[++i];
    }
    if (flag == "--scenario") {
      if (value != "idle" && value != "fanout" && value != "unicast" && value != "cluster")
        usage_error("--scenario: idle, fanout, unicast or cluster");
      o.scenario = value;
    } else if (flag == "--protocol") {
      if (value != "sse" && value != "ws")
        usage_error("--protocol: sse or ws");
      o.protocol = value == "ws" ? Protocol::ws : Protocol::sse;
    } else if (flag == "--url") {
      o.url = value;
    } else if (flag == "--publish-url") {
      o.publish_url = value;
    } else if (flag == "--server-pid") {
      o.server_pid = number<pid_t>(flag, value);
    } else if (flag == "--publish-pid") {
      o.publish_pid = number<pid_t>(flag, value);
    } else if (flag == "--connections") {
      o.connections = number<std::size_t>(flag, value);
    } else if (flag == "--events") {
      o.events = number<std::size_t>(flag, value);
    } else if (flag == "--duration") {
      o.duration = number<double>(flag, value);
    } else if (flag == "--rate") {
      o.rate = number<double>(flag, value);
    } else if (flag == "--publishers") {
      o.publishers = number<std::size_t>(flag, value);
    } else if (flag == "--window") {
      o.window = number<std::size_t>(flag, value);
    } else if (flag == "--warmup") {
      o.warmup = number<std::size_t>(flag, value);
    } else if (flag == "--connect-concurrency") {
      o.connect_concurrency = std::max<std::size_t>(1, number<std::size_t>(flag, value));
    } else if (flag == "--source-addresses") {
      o.source_addresses = std::min<std::size_t>(250, number<std::size_t>(flag, value));
    } else if (flag == "--connect-timeout") {
      o.connect_timeout = number<double>(flag, value);
    } else if (flag == "--drain-timeout") {
      o.drain_timeout = number<double>(flag, value);
    } else if (flag == "--label") {
      o.label = value;
    } else if (flag == "--json") {
      o.json_path = value;
    } else if (flag == "--cdf") {
      o.cdf_path = value;
    } else {
      usage_error("unknown option '" + flag + "'");
    }
  }
  if (o.url.empty() && o.spawn.empty())
    usage_error("give --url or --spawn");
  if (o.connections == 0)
    usage_error("--connections: at least 1");
  if (o.publishers == 0)
    o.publishers = o.scenario == "fanout" ? 1 : 8;
  // Unread bytes must fit the receive buffers, and flat out the server would be writing
  // into full ones: only a paced load.
  if (o.deferred_reads && (o.scenario == "idle" || o.rate <= 0))
    usage_error("--deferred-reads needs a paced load (--rate) of a publishing scenario");
  if (o.scenario == "cluster" && o.publish_url.empty())
    usage_error("cluster needs --publish-url");
  if (o.scenario != "idle" && o.events == 0 && o.duration == 0)
    o.duration = 10;
  if (o.scenario == "idle" && o.duration == 0)
    o.duration = 5;
  if (o.window == 0)
    o.window = 1;
  return o;
}

asio::ip::tcp::endpoint endpoint_of(const std::string& url, std::string& host) {
  static constexpr std::string_view scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    usage_error("url: only http://HOST:PORT");
  host = url.substr(scheme.size());
  if (const auto slash = host.find('/'); slash != std::string::npos)
    host.resize(slash);
  const auto colon = host.rfind(':');
  if (colon == std::string::npos)
    usage_error("url: no port in '" + url + "'");
  std::error_code ec;
  auto address = asio::ip::make_address(host.substr(0, colon), ec);
  if (ec)
    usage_error("url: '" + host.substr(0, colon) + "' is not an IP address");
  const auto port = number<unsigned short>("url port", host.substr(colon + 1));
  return {address, port};
}

double seconds(std::int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

// Runs the io_context until `done()` or `timeout` seconds, calling `tick()` after every
// handler and at least every millisecond.
void run_until(asio::io_context& io, const std::function<bool()>& done, double timeout,
               const std::function<void()>& tick = {}) {
  const auto deadline = now_ns() + static_cast<std::int64_t>(timeout * 1e9);
  while (!done() && now_ns() < deadline) {
    io.run_one_for(std::chrono::milliseconds(1));
    if (tick)
      tick();
  }
}

struct Cpu {
  std::optional<ProcCpu> server;
  std::optional<ProcCpu> publish_server;
  SelfCpu self;
  std::int64_t at = 0;
};

Cpu sample(const Options& o) {
  Cpu c;
  if (o.server_pid > 0)
    c.server = read_proc_cpu(o.server_pid);
  if (o.publish_pid > 0)
    c.publish_server = read_proc_cpu(o.publish_pid);
  c.self = read_self_cpu();
  c.at = now_ns();
  return c;
}

struct PhaseResult {
  std::uint64_t published = 0;  // requests sent
  std::uint64_t acked = 0;      // answered 202
  std::uint64_t errors = 0;     // other answers, broken connections
  int last_error_status = 0;
  std::uint64_t expected = 0;
  std::uint64_t received = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t resets = 0;
  std::uint64_t batches = 0;
  std::uint64_t bytes = 0;
  std::uint64_t unmatched = 0;  // deferred reads
  std::int64_t start_ns = 0;
  std::int64_t publish_end_ns = 0;
  std::int64_t last_delivery_ns = 0;
  Histogram rtt;
  Cpu before, after;
};

class Bench {
 public:
  Bench(Options o, std::int64_t epoch)
      : o_(std::move(o)), epoch_(epoch), rng_(std::random_device{}()) {}

  int run() {
    std::string host;
    const auto server = endpoint_of(o_.url, host);
    std::string publish_host = host;
    const auto publish_server =
        o_.publish_url.empty() ? server : endpoint_of(o_.publish_url, publish_host);

    PoolConfig cfg;
    cfg.protocol = o_.protocol;
    cfg.server = server;
    cfg.host = host;
    cfg.source_addresses = o_.source_addresses;
    cfg.connect_concurrency = o_.connect_concurrency;
    cfg.epoch_ns = epoch_;
    pool_ = std::make_unique<Pool>(io_, cfg);

    if (o_.server_pid > 0)
      rss_before_ = read_vmrss_kib(o_.server_pid);
    const auto connect_start = now_ns();
    pool_->open(o_.connections);
    run_until(
        io_, [&] { return pool_->ready() + pool_->failed() >= o_.connections; },
        o_.connect_timeout);
    connect_seconds_ = seconds(now_ns() - connect_start);
    if (pool_->ready() < o_.connections) {
      std::fprintf(stderr, "notify-loadgen: %zu of %zu connections ready (%zu failed: %s)\n",
                   pool_->ready(), o_.connections, pool_->failed(), pool_->first_error().c_str());
    }
    // Nothing to measure (a wrong URL, a server that died): stop instead of waiting for
    // deliveries that cannot come.
    if (pool_->ready() == 0)
      throw std::runtime_error("no connection is ready: " + pool_->first_error());

    PhaseResult result;
    if (o_.scenario == "idle") {
      result.before = sample(o_);
      run_until(
          io_, [] { return false; }, o_.duration);
      result.after = sample(o_);
      result.start_ns = result.before.at;
      result.last_delivery_ns = result.after.at;
    } else {
      for (std::size_t i = 0; i < o_.publishers; ++i) {
        publishers_.push_back(std::make_unique<Publisher>(
            io_, publish_server, publish_host,
            [this](Publisher& p, int status) { on_published(p, status); }));
        publishers_.back()->connect([this](std::error_code ec) {
          ++connected_publishers_;
          if (ec && publisher_error_.empty())
            publisher_error_ = "publisher connect: " + ec.message();
        });
      }
      run_until(
          io_, [&] { return connected_publishers_ == publishers_.size(); }, 10);
      if (!publisher_error_.empty()) {
        std::fprintf(stderr, "notify-loadgen: %s\n", publisher_error_.c_str());
        return 2;
      }
      if (o_.warmup > 0) {
        PhaseResult warm;
        phase(warm, o_.warmup, 0);
      }
      phase(result, o_.events, o_.duration);
    }
    if (o_.server_pid > 0)
      rss_after_ = read_vmrss_kib(o_.server_pid);
    const int status = report(result);

    pool_->say_goodbye();
    run_until(
        io_, [] { return false; }, 0.2);
    for (auto& p : publishers_)
      p->close();
    pool_->close_all();
    io_.restart();
    io_.poll();
    return status;
  }

 private:
  bool fanout() const { return o_.scenario == "fanout"; }

  // Unique within the run, and across runs sharing a store (the process and its start).
  std::string next_key() {
    static const std::string run =
        std::to_string(::getpid()) + "-" +
        std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    return "lg-" + run + "-" + std::to_string(++keys_sent_);
  }

  std::string body(std::int64_t stamp) {
    const auto t = std::to_string(stamp - epoch_);
    if (fanout())
      return R"({"broadcast":true,"type":"system","title":"bench","data":{"t":)" + t + "}}";
    std::uniform_int_distribution<std::size_t> user(0, o_.connections - 1);
    return R"({"userId":"u)" + std::to_string(user(rng_)) +
           R"(","type":"comment","title":"bench","data":{"t":)" + t + "}}";
  }

  void on_published(Publisher& p, int status) {
    const auto now = now_ns();
    if (!phase_)
      return;
    auto it = std::find_if(publishers_.begin(), publishers_.end(),
                           [&](const auto& q) { return q.get() == &p; });
    const auto index = static_cast<std::size_t>(it - publishers_.begin());
    phase_->rtt.add(now - post_started_[index]);
    if (status == 202 || status == 200) {
      ++phase_->acked;
    } else {
      ++phase_->errors;
      phase_->last_error_status = status;
    }
    if (!p.broken())
      idle_.push_back(index);
    pump();
  }

  // Sends what is due on the idle publishers.
  void pump() {
    if (!phase_ || idle_.empty())
      return;
    const auto now = now_ns();
    while (!idle_.empty()) {
      if (phase_limit_ && sent_ >= phase_limit_)
        break;
      if (phase_end_ns_ && now >= phase_end_ns_)
        break;
      std::int64_t stamp = now;
      if (o_.rate > 0) {
        const double per_second =
            fanout() ? o_.rate / static_cast<double>(o_.connections) : o_.rate;
        // The time it is meant to leave: a publisher that fell behind shows in the latency.
        stamp = phase_->start_ns +
                static_cast<std::int64_t>(static_cast<double>(sent_) * 1e9 / per_second);
        if (stamp > now) {
          // Woken exactly then: the run loop's 1 ms tick (epoll_wait counts milliseconds)
          // would send it up to 1 ms late, and that lateness would show in the server's
          // latency.
          arm_pace(stamp - now);
          break;
        }
      } else if (fanout()) {
        const auto completed = (pool_->stats.received - received_at_start_) / o_.connections;
        if (sent_ >= completed + o_.window)
          break;
      }
      const auto index = idle_.back();
      idle_.pop_back();
      post_started_[index] = now;
      publishers_[index]->post(body(stamp), o_.idempotency_keys ? next_key() : std::string());
      ++sent_;
      ++phase_->published;
    }
  }

  void arm_pace(std::int64_t in_ns) {
    if (pace_armed_)
      return;
    pace_armed_ = true;
    pace_timer_.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(in_ns, 0)));
    pace_timer_.async_wait([this](std::error_code) {
      pace_armed_ = false;
      pump();
    });
  }

  void phase(PhaseResult& r, std::size_t count, double duration) {
    auto& stats = pool_->stats;
    stats.latency.clear();
    received_at_start_ = stats.received;
    const auto dup0 = stats.duplicates, resets0 = stats.resets, batches0 = stats.batches,
               bytes0 = stats.bytes, arrivals0 = stats.arrivals, unmatched0 = stats.unmatched;
    if (o_.deferred_reads)
      pool_->defer_reads(true);
    idle_.clear();
    post_started_.assign(publishers_.size(), 0);
    for (std::size_t i = 0; i < publishers_.size(); ++i)
      if (!publishers_[i]->broken())
        idle_.push_back(i);
    sent_ = 0;
    phase_limit_ = count;
    r.before = sample(o_);
    r.start_ns = r.before.at;
    phase_end_ns_ = duration > 0 ? r.start_ns + static_cast<std::int64_t>(duration * 1e9) : 0;
    phase_ = &r;
    pump();
    // Publish until the count or the time is reached and every answer is in.
    const double limit = duration > 0 ? duration + 30 : 3600;
    run_until(
        io_,
        [&] {
          const bool stop = (phase_limit_ && sent_ >= phase_limit_) ||
                            (phase_end_ns_ && now_ns() >= phase_end_ns_);
          std::size_t usable = 0;
          for (const auto& p : publishers_)
            usable += p->broken() ? 0 : 1;
          return (stop && idle_.size() == usable) || usable == 0;
        },
        limit, [this] { pump(); });
    r.publish_end_ns = now_ns();
    phase_ = nullptr;
    r.expected = fanout() ? r.acked * o_.connections : r.acked;
    // Drain: until everything expected arrived, or nothing arrived for `quiet_s`.
    const auto drain = [&](auto arrived, double quiet_s) {
      auto last_count = arrived();
      auto last_progress = now_ns();
      run_until(
          io_,
          [&] {
            const auto got = arrived();
            if (got >= r.expected)
              return true;
            if (got != last_count) {
              last_count = got;
              last_progress = now_ns();
            }
            return now_ns() - last_progress > static_cast<std::int64_t>(quiet_s * 1e9);
          },
          3600);
    };
    if (o_.deferred_reads) {
      // What a collection counts is the sockets it found readable: as many as the
      // deliveries when each came alone (a paced fan-out), fewer when it found several
      // notifications of one socket (1:1 loads). So this wait also ends after a short quiet;
      // the sockets are then read, and the drain below waits for anything still missing.
      drain([&] { return stats.arrivals - arrivals0; }, deferred_quiet_s);
      r.after = sample(o_);
      pool_->defer_reads(false);
      r.unmatched = stats.unmatched - unmatched0;
      drain([&] { return stats.received - received_at_start_; }, o_.drain_timeout);
    } else {
      drain([&] { return stats.received - received_at_start_; }, o_.drain_timeout);
      r.after = sample(o_);
    }
    r.received = stats.received - received_at_start_;
    r.duplicates = stats.duplicates - dup0;
    r.resets = stats.resets - resets0;
    r.batches = stats.batches - batches0;
    r.bytes = stats.bytes - bytes0;
    r.last_delivery_ns = std::max(stats.last_delivery_ns, r.start_ns);
  }

  int report(const PhaseResult& r) {
    using nlohmann::ordered_json;
    const auto& lat = pool_->stats.latency;
    const double wall = seconds(std::max<std::int64_t>(1, r.last_delivery_ns - r.start_ns));
    const double phase_wall = seconds(std::max<std::int64_t>(1, r.after.at - r.before.at));
    ordered_json j;
    j["scenario"] = o_.scenario;
    j["protocol"] = o_.protocol == Protocol::ws ? "ws" : "sse";
    j["label"] = o_.label;
    j["connections"] = o_.connections;
    j["ready"] = pool_->ready();
    j["failed_connections"] = pool_->failed();
    j["dropped_connections"] = pool_->closed_after_ready();
    j["connect_s"] = connect_seconds_;
    std::uint64_t deliveries = r.received;
    if (o_.scenario != "idle") {
      j["publishers"] = o_.publishers;
      j["rate"] = o_.rate;
      if (fanout() && o_.rate == 0)
        j["window"] = o_.window;
      j["published"] = r.published;
      j["acked"] = r.acked;
      j["publish_errors"] = r.errors;
      if (r.errors)
        j["last_error_status"] = r.last_error_status;
      j["expected"] = r.expected;
      j["received"] = r.received;
      j["lost"] = r.expected > r.received ? r.expected - r.received : 0;
      j["duplicates"] = r.duplicates;
      j["resets"] = r.resets;
      j["batches"] = r.batches;
      if (o_.deferred_reads) {
        j["deferred_reads"] = true;
        j["unmatched_arrivals"] = r.unmatched;
      }
      j["duration_s"] = wall;
      j["deliveries_per_s"] = static_cast<double>(r.received) / wall;
      j["publishes_per_s"] = static_cast<double>(r.acked) /
                             seconds(std::max<std::int64_t>(1, r.publish_end_ns - r.start_ns));
      j["bytes_per_delivery"] =
          r.received ? static_cast<double>(r.bytes) / static_cast<double>(r.received) : 0.0;
      j["latency_ms"] = {{"p50", lat.quantile_ms(0.50)},
                         {"p90", lat.quantile_ms(0.90)},
                         {"p99", lat.quantile_ms(0.99)},
                         {"max", lat.max_ms()},
                         {"mean", lat.mean_ms()}};
      j["publish_rtt_ms"] = {{"p50", r.rtt.quantile_ms(0.5)},
                             {"p99", r.rtt.quantile_ms(0.99)},
                             {"max", r.rtt.max_ms()}};
    } else {
      j["hold_s"] = phase_wall;
      j["heartbeats"] = pool_->stats.heartbeats;
    }
    auto cpu_json = [&](const std::optional<ProcCpu>& a, const std::optional<ProcCpu>& b) {
      ordered_json c;
      if (!a || !b)
        return c;
      const double user = b->user_s - a->user_s, sys = b->sys_s - a->sys_s;
      const double sched = static_cast<double>(b->sched_ns - a->sched_ns) / 1e9;
      c["user_s"] = user;
      c["sys_s"] = sys;
      c["sched_s"] = sched;
      c["cpu_share"] = (user + sys) / phase_wall;
      if (deliveries) {
        const double d = static_cast<double>(deliveries);
        c["ns_per_delivery"] = (user + sys) * 1e9 / d;
        c["user_ns_per_delivery"] = user * 1e9 / d;
        c["sys_ns_per_delivery"] = sys * 1e9 / d;
        c["sched_ns_per_delivery"] = sched * 1e9 / d;
        c["deliveries_per_cpu_s"] = user + sys > 0 ? d / (user + sys) : 0.0;
      }
      return c;
    };
    if (r.before.server)
      j["server_cpu"] = cpu_json(r.before.server, r.after.server);
    if (r.before.publish_server)
      j["publish_server_cpu"] = cpu_json(r.before.publish_server, r.after.publish_server);
    const double self =
        (r.after.self.user_s + r.after.self.sys_s) - (r.before.self.user_s + r.before.self.sys_s);
    j["loadgen_cpu_share"] = self / phase_wall;
    if (rss_before_ && rss_after_) {
      j["rss_kib"] = {
          {"before", *rss_before_},
          {"after", *rss_after_},
          {"per_connection", static_cast<double>(static_cast<std::int64_t>(*rss_after_) -
                                                 static_cast<std::int64_t>(*rss_before_)) /
                                 static_cast<double>(std::max<std::size_t>(1, pool_->ready()))}};
    }
    const std::string line = j.dump();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (!o_.json_path.empty()) {
      std::ofstream out(o_.json_path, std::ios::app);
      out << line << '\n';
    }
    if (!o_.cdf_path.empty() && o_.scenario != "idle") {
      std::ofstream out(o_.cdf_path);
      out << lat.cdf();
    }
    table(j);

    bool ok = pool_->ready() == o_.connections && pool_->closed_after_ready() == 0;
    if (o_.scenario != "idle")
      ok = ok && r.received >= r.expected && r.duplicates == 0 && r.errors == 0 && r.resets == 0;
    return ok || o_.allow_loss ? 0 : 1;
  }

  static void table(const nlohmann::ordered_json& j) {
    auto num = [&](const nlohmann::ordered_json& v) -> std::string {
      char b[64];
      if (v.is_number_float()) {
        std::snprintf(b, sizeof b, "%.4g", v.get<double>());
      } else if (v.is_number()) {
        std::snprintf(b, sizeof b, "%lld", static_cast<long long>(v.get<double>()));
      } else {
        return v.dump();
      }
      return b;
    };
    std::fprintf(stderr, "\n%-28s %s\n", "figure", "value");
    std::function<void(const std::string&, const nlohmann::ordered_json&)> walk =
        [&](const std::string& prefix, const nlohmann::ordered_json& v) {
          for (auto it = v.begin(); it != v.end(); ++it) {
            const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
            if (it->is_object()) {
              walk(key, *it);
            } else {
              std::fprintf(stderr, "%-28s %s\n", key.c_str(), num(*it).c_str());
            }
          }
        };
    walk("", j);
  }

  Options o_;
  std::int64_t epoch_;
  asio::io_context io_{1};
  asio::steady_timer pace_timer_{io_};
  bool pace_armed_ = false;
  std::unique_ptr<Pool> pool_;
  std::vector<std::unique_ptr<Publisher>> publishers_;
  std::size_t connected_publishers_ = 0;
  std::string publisher_error_;
  std::vector<std::size_t> idle_;
  std::vector<std::int64_t> post_started_;
  PhaseResult* phase_ = nullptr;
  std::uint64_t sent_ = 0;
  std::uint64_t keys_sent_ = 0;
  std::uint64_t phase_limit_ = 0;
  std::int64_t phase_end_ns_ = 0;
  std::uint64_t received_at_start_ = 0;
  std::mt19937_64 rng_;
  double connect_seconds_ = 0;
  std::optional<std::uint64_t> rss_before_, rss_after_;
};

}  // namespace
}  // namespace loadgen

int main(int argc, char** argv) {
  using namespace loadgen;
  std::signal(SIGPIPE, SIG_IGN);
  auto options = parse(argc, argv);
  const auto limit = raise_fd_limit();
  if (limit < options.connections + 64)
    usage_error("--connections " + std::to_string(options.connections) +
                " needs more open files than " + std::to_string(limit) + " (ulimit -n)");
  const auto epoch = now_ns();
  Child child;
  int status = 2;
  try {
    if (!options.spawn.empty()) {
      child = spawn_server(options.spawn, std::chrono::seconds(20));
      options.url = child.url;
      if (options.server_pid == 0)
        options.server_pid = child.pid;
    }
    Bench bench(options, epoch);
    status = bench.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-loadgen: %s\n", e.what());
    status = 2;
  }
  if (child.pid > 0) {
    const auto how = stop_server(child, std::chrono::seconds(5));
    if (how != "exit 0" && how != "signal 15")
      std::fprintf(stderr, "notify-loadgen: the server ended with %s\n", how.c_str());
  }
  return status;
}
