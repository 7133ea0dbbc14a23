#include "options.hpp"

#include <asio/ip/address.hpp>

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace demo {
namespace {

std::optional<unsigned long long> parse_unsigned(std::string_view text, unsigned long long max) {
  unsigned long long value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value > max)
    return std::nullopt;
  return value;
}

// "http://host" or "https://host:port", as a browser sends it in the Origin header: a
// scheme, "://", a host (and port) and nothing else.
bool is_origin(std::string_view v) {
  std::string_view rest;
  if (v.rfind("http://", 0) == 0) {
    rest = v.substr(7);
  } else if (v.rfind("https://", 0) == 0) {
    rest = v.substr(8);
  } else {
    return false;
  }
  if (rest.empty())
    return false;
  for (const char c : rest) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\')
      return false;
  }
  return true;
}

}  // namespace

bool is_redis_url(std::string_view v) {
  return (v.rfind("redis://", 0) == 0 && v.size() > 8) ||
         (v.rfind("redis-sentinel://", 0) == 0 && v.size() > 17) ||
         (v.rfind("redis-cluster://", 0) == 0 && v.size() > 16);
}

ParsedOptions parse_options(const std::vector<std::string>& args) {
  ParsedOptions result;
  Options& o = result.options;
  auto fail = [&result](std::string message) {
    result.action = ParsedOptions::Action::error;
    result.error = std::move(message);
    return result;
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      if (value)
        return fail("--help takes no value");
      result.action = ParsedOptions::Action::help;
      return result;
    }
    const bool known =
        flag == "--port" || flag == "--bind" || flag == "--heartbeat" || flag == "--batch-ms" ||
        flag == "--auth" || flag == "--threads" || flag == "--max-connections" ||
        flag == "--allowed-origin" || flag == "--typing-pairs" || flag == "--store" ||
        flag == "--bus" || flag == "--wait-replicas" || flag == "--bus-thread" ||
        flag == "--batched-writes" || flag == "--idle-timeout" || flag == "--request-timeout" ||
        flag == "--session-seconds" || flag == "--tls-cert" || flag == "--tls-key";
    if (!known)
      return fail("unknown option '" + args[i] + "'");
    if (!value) {
      if (i + 1 >= args.size())
        return fail(flag + " needs a value");
      value = args[++i];
    }
    const std::string& v = *value;

    if (flag == "--port") {
      const auto n = parse_unsigned(v, 65535);
      if (!n)
        return fail("--port: '" + v + "' is not a port (0 to 65535)");
      o.port = static_cast<unsigned short>(*n);
    } else if (flag == "--bind") {
      std::error_code ec;
      asio::ip::make_address(v, ec);
      if (ec)
        return fail("--bind: '" + v + "' is not an IP address");
      o.bind = v;
    } else if (flag == "--heartbeat") {
      const auto n = parse_unsigned(v, 24 * 3600);
      if (!n || *n < 1)
        return fail("--heartbeat: '" + v + "' is not a number of seconds (at least 1)");
      o.heartbeat = std::chrono::seconds(*n);
    } else if (flag == "--session-seconds") {
      const auto n = parse_unsigned(v, 365 * 24 * 3600);
      if (!n)
        return fail("--session-seconds: '" + v + "' is not a number of seconds");
      o.session = std::chrono::seconds(*n);
    } else if (flag == "--batch-ms") {
      const auto n = parse_unsigned(v, 60000);
      if (!n)
        return fail("--batch-ms: '" + v + "' is not a number of milliseconds (0 to 60000)");
      o.batch = std::chrono::milliseconds(*n);
    } else if (flag == "--auth") {
      if (v != "dev")
        return fail("--auth: '" + v + "' is not supported (only 'dev')");
      o.auth = v;
    } else if (flag == "--threads") {
      const auto n = parse_unsigned(v, 256);
      if (!n || *n < 1)
        return fail("--threads: '" + v + "' is not a thread count (1 to 256)");
      o.threads = static_cast<unsigned>(*n);
    } else if (flag == "--max-connections") {
      const auto n = parse_unsigned(v, 10000000);
      if (!n || *n < 1)
        return fail("--max-connections: '" + v + "' is not a count (at least 1)");
      o.max_connections = static_cast<std::size_t>(*n);
    } else if (flag == "--allowed-origin") {
      if (!is_origin(v))
        return fail("--allowed-origin: '" + v +
                    "' is not an origin (like https://app.example.com)");
      o.allowed_origins.push_back(v);
    } else if (flag == "--typing-pairs") {
      if (v != "any" && v != "none")
        return fail("--typing-pairs: '" + v + "' is not any or none");
      o.typing_pairs = v;
    } else if (flag == "--store") {
      if (v != "memory" && (v.rfind("sqlite:", 0) != 0 || v.size() == 7) && !is_redis_url(v))
        return fail("--store: '" + v +
                    "' is not memory, sqlite:PATH, redis://HOST:PORT[/DB], redis-sentinel://... or "
                    "redis-cluster://...");
      o.store = v;
    } else if (flag == "--wait-replicas") {
      const auto n = parse_unsigned(v, 100);
      if (!n)
        return fail("--wait-replicas: '" + v + "' is not a number of replicas (0 to 100)");
      o.wait_replicas = static_cast<unsigned>(*n);
    } else if (flag == "--bus") {
      if (v != "inprocess" && !is_redis_url(v))
        return fail("--bus: '" + v +
                    "' is not inprocess, redis://HOST:PORT[/DB], redis-sentinel://... or "
                    "redis-cluster://...");
      o.bus = v;
    } else if (flag == "--bus-thread") {
      if (v != "io" && v != "own")
        return fail("--bus-thread: '" + v + "' is not io or own");
      o.bus_thread = v;
    } else if (flag == "--batched-writes") {
      if (v != "on" && v != "off")
        return fail("--batched-writes: '" + v + "' is not on or off");
      o.batched_writes = v == "on";
    } else if (flag == "--idle-timeout" || flag == "--request-timeout") {
      const auto n = parse_unsigned(v, 24 * 3600 * 1000);
      if (!n || *n < 1)
        return fail(flag + ": '" + v + "' is not a number of milliseconds (at least 1)");
      (flag == "--idle-timeout" ? o.idle_timeout : o.request_timeout) =
          std::chrono::milliseconds(*n);
    } else if (flag == "--tls-cert" || flag == "--tls-key") {
      if (v.empty())
        return fail(flag + " needs a file");
      (flag == "--tls-cert" ? o.tls_cert : o.tls_key) = v;
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty())
    return fail("--tls-cert and --tls-key go together");
  if (o.wait_replicas > 0 && !is_redis_url(o.store))
    return fail("--wait-replicas is for a Redis --store");
  return result;
}

std::string usage(const std::string& program) {
  return "usage: " + program +
         " [options]\n"
         "\n"
         "The notify demo server: the demo page, its HTTP API, the event stream (SSE) and\n"
         "the WebSocket.\n"
         "\n"
         "  --port N              port to listen on; 0 picks a free one (default 8080)\n"
         "  --bind ADDR           address to listen on (default 127.0.0.1)\n"
         "  --heartbeat SECONDS   heartbeat on idle streams (default 30, at least 1)\n"
         "  --session-seconds N   end each stream and socket with session:end \"expired\"\n"
         "                        N seconds after it opened, as a token's expiry would,\n"
         "                        within a second (default 0: never)\n"
         "  --batch-ms MS         per-user batching window (default 200, 0 disables)\n"
         "  --auth dev            user from ?user= or X-User-Id (the only mode, default)\n"
         "  --threads N           threads, each running its own io_context (default 1)\n"
         "  --max-connections N   streams on this instance (default 100000)\n"
         "  --idle-timeout MS     close a keep-alive connection idle this long between\n"
         "                        requests (default 60000)\n"
         "  --request-timeout MS  answer 408 to a request not complete this long after its\n"
         "                        first byte, and close a connection whose response is not\n"
         "                        read within it (default 30000)\n"
         "  --allowed-origin ORIGIN\n"
         "                        accept WebSocket handshakes only from this origin (and from\n"
         "                        clients that send no Origin); repeatable. Default: any\n"
         "                        origin, which is for development only\n"
         "  --typing-pairs any|none\n"
         "                        who may relay typing indicators to whom: any two distinct\n"
         "                        users (default), or nobody\n"
         "  --store memory|sqlite:PATH\n"
         "                        where notifications are kept: in memory (default, lost on\n"
         "                        exit) or in the SQLite database file PATH\n"
         "  --store redis://HOST:PORT[/DB]\n"
         "                        ... or in Redis, shared by a fleet of instances\n"
         "  --store redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]\n"
         "                        ... or in the Redis primary these sentinels name (and\n"
         "                        the one they name after a failover); --bus too\n"
         "  --store redis-cluster://HOST:PORT[,HOST:PORT...]\n"
         "                        ... or in a Redis Cluster these nodes belong to (its keys\n"
         "                        and channels in the slot of {notify}); --bus too\n"
         "  --wait-replicas N     with a Redis --store: answer a publish or a read mark\n"
         "                        once N replicas of the primary have it (WAIT, within 1 s;\n"
         "                        else 503), so that a failover cannot lose it (default 0)\n"
         "  --bus inprocess|redis://HOST:PORT[/DB]\n"
         "                        how instances tell each other about events: not at all\n"
         "                        (default, one instance) or over Redis Pub/Sub. A fleet uses\n"
         "                        redis for both --bus and --store (the same server)\n"
         "  --bus-thread io|own   where a Redis bus runs: on the first io thread (default;\n"
         "                        messages reach local clients without a thread hand-over)\n"
         "                        or on a thread of its own\n"
         "  --tls-cert PEM --tls-key PEM\n"
         "                        serve https:// and wss:// with this certificate chain and\n"
         "                        private key (TLS 1.2 or later); default: plain http\n"
         "  --batched-writes on|off\n"
         "                        write a fan-out's connections with one io_uring submission\n"
         "                        per pass (default on, where the kernel allows io_uring) or\n"
         "                        with one sendmsg() each\n"
         "  --help                show this help\n";
}

}  // namespace demo
