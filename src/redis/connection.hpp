// Internal parts of the notify::redis component: RESP replies (parsed by hiredis's reader),
// command formatting, reconnection backoff and its reporting rule, opening an asynchronous
// connection (the bus's two), and a blocking connection with deadlines (the store's).
#pragma once

#include <notify/redis_options.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <condition_variable>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;

namespace notify::redis_detail {

using Clock = std::chrono::steady_clock;

// One RESP2 reply, converted from hiredis's redisReply.
struct Reply {
  enum class Type { string, status, error, integer, nil, array };
  Type type = Type::nil;
  std::string str;              // string, status, error
  long long integer = 0;        // integer
  std::vector<Reply> elements;  // array

  bool is_error() const noexcept { return type == Type::error; }
  bool is_array() const noexcept { return type == Type::array; }
  bool is_nil() const noexcept { return type == Type::nil; }
  // The text of a string/status reply, the decimal form of an integer; "" otherwise.
  std::string text() const;
  // An integer reply, or a string holding a decimal integer; throws RedisError otherwise.
  long long as_integer() const;
};

using Command = std::vector<std::string>;

// Appends the RESP form of `args` (redisFormatCommandArgv) to `out`.
void append_command(std::string& out, const Command& args);
void append_command(std::string& out, std::initializer_list<std::string_view> args);

// hiredis's reader, owned.
class Reader {
 public:
  Reader();
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  void feed(const char* data, std::size_t size);
  // The next complete reply, if any. Throws RedisError on a protocol error.
  bool next(Reply& out);
  void reset();  // drops buffered bytes (a new connection)

 private:
  redisReader* reader_ = nullptr;
};

// Exponential backoff with jitter.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);
  std::chrono::milliseconds next();  // the wait before the next attempt
  void reset() noexcept { attempt_ = 0; }

 private:
  std::chrono::milliseconds initial_, max_;
  unsigned attempt_ = 0;
  std::mt19937 random_;
};

// The inverse of redis_escape(); nullopt for text it cannot have produced.
std::optional<std::string> redis_unescape(std::string_view text);

// Throws std::invalid_argument (naming `who`) unless `options` says where Redis is: a host
// and a port, sentinels (each with a host and a port) and the primary's name, or cluster
// nodes (each with a host and a port) with a prefix that holds a hash tag, and db 0.
void check_address(const RedisOptions& options, const char* who);

// Redis Cluster: what a key's slot is computed from, the text between its first '{' and the
// next '}' when that is not empty ("" otherwise); and the slot, 0 to 16383.
std::string_view hash_tag(std::string_view key) noexcept;
unsigned key_slot(std::string_view key) noexcept;

// "host:port", with an IPv6 host in brackets (for messages).
std::string endpoint_text(const std::string& host, std::uint16_t port);

// The commands that open a connection: AUTH and SELECT as configured.
std::vector<Command> handshake_commands(const RedisOptions& options, bool select_db);

// Resolves options.host and connects `socket` (with TCP_NODELAY and keep-alive) on its
// executor. With options.sentinels (or cluster_nodes), the host is the primary the sentinels
// name (the primary of the prefix's slot), and once connected the primary is asked ROLE
// (after AUTH when configured) and must say it is one.
// `done` gets "" on success, else what failed. The caller keeps `socket`, `resolver` and
// `options` alive until then (its handler holds the connection) and ignores calls for a
// dropped one.
void async_open(asio::ip::tcp::resolver& resolver, asio::ip::tcp::socket& socket,
                const RedisOptions& options, std::function<void(const std::string& failure)> done);

// Redis Sentinel: asks options.sentinels in order, each on a connection of its own, for the
// address of the primary named options.sentinel_master, until one knows it or `deadline`
// passes. Redis Cluster: asks options.cluster_nodes the same way for the primary of the
// prefix's slot (CLUSTER SLOTS). `done(failure, primary)` runs on `executor` ("" on
// success), once.
void async_find_primary(
    const asio::any_io_executor& executor, const RedisOptions& options, Clock::time_point deadline,
    std::function<void(const std::string& failure, RedisEndpoint primary)> done);

// Whether a ROLE reply says "master".
bool says_primary(const Reply& role) noexcept;
// Whether the primary is found through sentinels or a cluster's nodes.
bool found_by_lookup(const RedisOptions& options) noexcept;

// Whether `reply` is an error whose code (its first word) is `code`, as "LOADING".
bool has_error_code(const Reply& reply, std::string_view code) noexcept;

// Whether an error reply says the server is the wrong one now: a replica (READONLY: a
// failover happened) or a cluster node that no longer serves the slot (MOVED). The
// connection should be dropped, so that the next one finds the primary. (A script refused
// "a non local key" is not one: every script names its keys, so a node that does not serve
// the slot answers MOVED before running it; only a key the script could not name, the age
// trim's, which it touches through pcall, could be refused so, after it may have written.)
bool says_wrong_server(const Reply& reply) noexcept;

// Whether an error reply says the server ran nothing and may run it a little later: it is
// loading its data after a restart (LOADING) or running someone's long script (BUSY); the
// cluster is down, as for a moment after a failover (CLUSTERDOWN, or a script's first key
// refused "while the cluster is down"), or the slot is being moved (TRYAGAIN, ASK); the
// primary has too few replicas for a write (NOREPLICAS); or the server is still the wrong
// one on a new connection (READONLY, MOVED: the sentinels or the cluster have not settled).
// A script refused "a non local key" is not among them: it may have run in part.
bool says_try_again(const Reply& reply) noexcept;

// Whether the n-th failure in a row (or error of a kind) is reported: 1, 2, 4, 8..., so that
// a log is not flooded while Redis stays away.
constexpr bool worth_reporting(unsigned long n) noexcept {
  return n != 0 && (n & (n - 1)) == 0;
}

// A blocking connection: every call writes its commands, waits for their replies and
// returns, within options.command_timeout (connecting first, within connect_timeout, when
// needed). Not thread safe: one caller at a time (see Pool).
// I/O failures throw std::system_error: the connection is closed and the next call connects
// again. A call refused because the server is no longer the one (READONLY, MOVED) is sent
// once more on a new connection, found through the sentinels or the cluster: nothing of it
// ran. There is no backoff here: calls come from requests (each bounded by the timeouts),
// and a store that is back must serve the very next call (the bus's gap repair).
class SyncConnection {
 public:
  explicit SyncConnection(RedisOptions options);
  ~SyncConnection();
  SyncConnection(const SyncConnection&) = delete;
  SyncConnection& operator=(const SyncConnection&) = delete;

  Reply run(const Command& command);
  std::vector<Reply> run(const std::vector<Command>& commands);
  bool is_open() const noexcept { return socket_.is_open(); }
  void close() noexcept;

 private:
  void ensure_connected();
  void connect(Clock::time_point deadline);
  std::vector<Reply> exchange(const std::string& out, std::size_t count,
                              Clock::time_point deadline);
  // Whether a reply says this is the wrong server now (says_wrong_server).
  static bool refused_here(const std::vector<Reply>& replies) noexcept;
  std::vector<Reply> checked(std::vector<Reply> replies);  // refused_here closes the connection
  template <typename Start>
  std::error_code wait(Start&& start, Clock::time_point deadline);

  RedisOptions options_;
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  Reader reader_;
  std::array<char, 16384> buffer_{};
};

// A small pool of SyncConnections, each used by one caller at a time.
class Pool {
 public:
  Pool(const RedisOptions& options, std::size_t size);

  template <typename F>
  auto with(F&& f) {
    Lease lease(*this);
    return f(*lease.connection);
  }

 private:
  struct Lease {
    explicit Lease(Pool& pool);
    ~Lease();
    Pool& pool;
    SyncConnection* connection;
  };
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SyncConnection>> all_;
  std::vector<SyncConnection*> free_;
};

}  // namespace notify::redis_detail
