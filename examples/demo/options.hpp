// The command line of notify-demo.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace demo {

struct Options {
  std::string bind = "127.0.0.1";
  unsigned short port = 8080;            // 0: any free port
  std::chrono::seconds heartbeat{30};    // at least 1
  std::chrono::milliseconds batch{200};  // 0 disables batching
  std::string auth = "dev";              // the only mode: ?user= or X-User-Id
  unsigned threads = 1;                  // threads, one io_context each
  std::size_t max_connections = 100000;  // streams on this instance
  // --allowed-origin (repeatable): the only origins a WebSocket handshake may come from.
  // Empty: any origin (development only).
  std::vector<std::string> allowed_origins;
  std::string typing_pairs = "any";  // "any" (two distinct users) or "none"
  std::string store = "memory";      // "memory" or "sqlite:PATH"
                                     // or "redis://HOST:PORT[/DB]", "redis-sentinel://..."
                                     // or "redis-cluster://..."
  // --wait-replicas: a write to a Redis store returns once this many replicas have it
  // (RedisStoreOptions::wait_replicas); 0: once the primary has it.
  unsigned wait_replicas = 0;
  std::string bus = "inprocess";  // "inprocess", or a Redis URL as for store
  std::string bus_thread = "io";  // a Redis bus on the first io thread ("io") or its own
  bool batched_writes = true;     // io_uring submissions for a fan-out's writes
  // HTTP connections (not streams): idle between requests; a request, and a response.
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds request_timeout{30000};
  // --session-seconds: every stream and socket ends with session:end "expired" this long
  // after it opened (Sink::end_session_at), as if its credentials expired. 0: never.
  std::chrono::seconds session{0};
  // --tls-cert / --tls-key: serve HTTPS (and wss://) with this PEM certificate chain and
  // private key. Both or neither.
  std::string tls_cert;
  std::string tls_key;
};

struct ParsedOptions {
  enum class Action { run, help, error };
  Action action = Action::run;
  Options options;
  std::string error;  // for Action::error
};

// Whether a --store or --bus value names Redis: "redis://", "redis-sentinel://" or
// "redis-cluster://" and something (notify::parse_redis_url checks the rest when it is used).
bool is_redis_url(std::string_view value);

// Parses `args` (without the program name). Accepts "--flag value" and "--flag=value".
ParsedOptions parse_options(const std::vector<std::string>& args);

std::string usage(const std::string& program);

}  // namespace demo
