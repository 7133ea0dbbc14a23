#include "connection.hpp"

#include <asio/connect.hpp>
#include <asio/error.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <system_error>

namespace notify::redis_detail {

// --- replies --------------------------------------------------------------------------

std::string Reply::text() const {
  switch (type) {
    case Type::string:
    case Type::status:
    case Type::error:
      return str;
    case Type::integer:
      return std::to_string(integer);
    default:
      return {};
  }
}

long long Reply::as_integer() const {
  if (type == Type::integer)
    return integer;
  if (type == Type::string || type == Type::status) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(str.c_str(), &end, 10);
    if (!str.empty() && end == str.c_str() + str.size() && errno == 0)
      return v;
  }
  if (type == Type::error)
    throw RedisError("redis: " + str);
  throw RedisError("redis: expected an integer reply");
}

namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i)
        out.elements.push_back(convert(r->element[i]));
      break;
    default:  // REDIS_REPLY_NIL (RESP2 only: no HELLO 3 is ever sent)
      out.type = Reply::Type::nil;
      break;
  }
  return out;
}

}  // namespace

namespace {

template <typename Args>
void format_into(std::string& out, const Args& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* formatted = nullptr;
  const int n = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(),
                                       lengths.data());
  if (n < 0 || formatted == nullptr)
    throw std::bad_alloc();
  out.append(formatted, static_cast<std::size_t>(n));
  redisFreeCommand(formatted);
}

}  // namespace

void append_command(std::string& out, const Command& args) {
  format_into(out, args);
}

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  format_into(out, args);
}

// --- reader ---------------------------------------------------------------------------

Reader::Reader() : reader_(redisReaderCreate()) {
  if (!reader_)
    throw std::bad_alloc();
}

Reader::~Reader() {
  redisReaderFree(reader_);
}

void Reader::feed(const char* data, std::size_t size) {
  if (redisReaderFeed(reader_, data, size) != REDIS_OK)
    throw RedisError(std::string("redis: protocol error: ") + reader_->errstr);
}

bool Reader::next(Reply& out) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK)
    throw RedisError(std::string("redis: protocol error: ") + reader_->errstr);
  if (!raw)
    return false;
  auto* reply = static_cast<redisReply*>(raw);
  try {
    out = convert(reply);
  } catch (...) {
    freeReplyObject(reply);
    throw;
  }
  freeReplyObject(reply);
  return true;
}

void Reader::reset() {
  auto* fresh = redisReaderCreate();
  if (!fresh)
    throw std::bad_alloc();
  redisReaderFree(reader_);
  reader_ = fresh;
}

// --- backoff --------------------------------------------------------------------------

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      random_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  auto delay = initial_;
  for (unsigned i = 0; i < attempt_ && delay < max_; ++i)
    delay *= 2;
  delay = std::min(delay, max_);
  if (attempt_ < 32)
    ++attempt_;
  std::uniform_int_distribution<long long> pick(delay.count() / 2, delay.count());
  return std::chrono::milliseconds(pick(random_));
}

void check_address(const RedisOptions& options, const char* who) {
  const auto fail = [who](const char* what) {
    throw std::invalid_argument(std::string(who) + ": " + what);
  };
  if (!options.cluster_nodes.empty()) {
    if (!options.sentinels.empty())
      fail("both cluster nodes and sentinels: a cluster fails over by itself");
    for (const auto& n : options.cluster_nodes)
      if (n.host.empty() || n.port == 0)
        fail("a cluster node without a host or a port");
    if (hash_tag(options.prefix).empty())
      fail(
          "in a cluster the prefix needs a hash tag, as in \"{notify}:\", so that every key "
          "is in one slot");
    if (options.db != 0)
      fail("a cluster has only db 0");
    return;
  }
  if (options.sentinels.empty()) {
    if (options.host.empty())
      fail("the host is empty");
    if (options.port == 0)
      fail("the port is 0");
    return;
  }
  if (options.sentinel_master.empty())
    fail("sentinels without sentinel_master, the primary's name");
  for (const auto& s : options.sentinels)
    if (s.host.empty() || s.port == 0)
      fail("a sentinel without a host or a port");
}

std::vector<Command> handshake_commands(const RedisOptions& options, bool select_db) {
  std::vector<Command> out;
  if (!options.password.empty()) {
    if (options.user.empty())
      out.push_back({"AUTH", options.password});
    else
      out.push_back({"AUTH", options.user, options.password});
  }
  if (select_db && options.db != 0)
    out.push_back({"SELECT", std::to_string(options.db)});
  return out;
}

bool says_primary(const Reply& role) noexcept {
  return role.is_array() && !role.elements.empty() && role.elements[0].str == "master";
}

bool has_error_code(const Reply& reply, std::string_view code) noexcept {
  const std::string_view text = reply.str;
  return reply.is_error() && text.size() > code.size() && text.compare(0, code.size(), code) == 0 &&
         text[code.size()] == ' ';
}

bool says_wrong_server(const Reply& reply) noexcept {
  return has_error_code(reply, "READONLY") || has_error_code(reply, "MOVED");
}

bool says_try_again(const Reply& reply) noexcept {
  if (!reply.is_error())
    return false;
  for (const std::string_view code :
       {"LOADING", "BUSY", "CLUSTERDOWN", "TRYAGAIN", "ASK", "NOREPLICAS", "MASTERDOWN"})
    if (has_error_code(reply, code))
      return true;
  return says_wrong_server(reply) ||
         reply.str.find("while the cluster is down") != std::string::npos;
}

namespace {

using OpenDone = std::function<void(const std::string& failure)>;

void connect_endpoint(asio::ip::tcp::resolver& resolver, asio::ip::tcp::socket& socket,
                      const std::string& host, std::uint16_t port, OpenDone done) {
  resolver.async_resolve(
      host, std::to_string(port),
      [&socket, where = endpoint_text(host, port), done = std::move(done)](
          std::error_code ec, asio::ip::tcp::resolver::results_type results) mutable {
        if (ec)
          return done("resolve " + where + ": " + ec.message());
        asio::async_connect(socket, results,
                            [&socket, where, done = std::move(done)](
                                std::error_code ec2, const asio::ip::tcp::endpoint&) {
                              if (ec2)
                                return done("connect to " + where + ": " + ec2.message());
                              std::error_code ignored;
                              socket.set_option(asio::ip::tcp::no_delay(true), ignored);
                              socket.set_option(asio::socket_base::keep_alive(true), ignored);
                              done("");
                            });
      });
}

// Writes `commands` on `socket` and reads as many replies: the short question-and-answer of a
// connection being opened. `done(failure, replies)`, failure "" on success.
using ExchangeDone = std::function<void(const std::string& failure, std::vector<Reply> replies)>;

struct Exchange {
  std::string out;
  Reader reader;
  std::array<char, 1024> buffer{};
  std::vector<Reply> replies;
  std::size_t expected = 0;
};

void read_replies(asio::ip::tcp::socket& socket, std::shared_ptr<Exchange> exchange,
                  ExchangeDone done) {
  auto* x = exchange.get();
  socket.async_read_some(
      asio::buffer(x->buffer), [&socket, exchange = std::move(exchange), done = std::move(done)](
                                   std::error_code ec, std::size_t n) mutable {
        if (ec)
          return done("read: " + ec.message(), {});
        try {
          exchange->reader.feed(exchange->buffer.data(), n);
          Reply reply;
          while (exchange->replies.size() < exchange->expected && exchange->reader.next(reply))
            exchange->replies.push_back(std::move(reply));
        } catch (const std::exception& e) {
          return done(e.what(), {});
        }
        if (exchange->replies.size() < exchange->expected)
          return read_replies(socket, std::move(exchange), std::move(done));
        done("", std::move(exchange->replies));
      });
}

void async_exchange(asio::ip::tcp::socket& socket, const std::vector<Command>& commands,
                    ExchangeDone done) {
  auto exchange = std::make_shared<Exchange>();
  for (const auto& c : commands)
    append_command(exchange->out, c);
  exchange->expected = commands.size();
  auto* x = exchange.get();
  asio::async_write(socket, asio::buffer(x->out),
                    [&socket, exchange = std::move(exchange), done = std::move(done)](
                        std::error_code ec, std::size_t) mutable {
                      if (ec)
                        return done("write: " + ec.message(), {});
                      read_replies(socket, std::move(exchange), std::move(done));
                    });
}

// AUTH (when configured) and ROLE on a new connection to what the sentinels or the cluster
// named: it must still be the primary (their answer may be a failover old).
void check_role(asio::ip::tcp::socket& socket, const RedisOptions& options, std::string where,
                OpenDone done) {
  auto commands = handshake_commands(options, false);
  commands.push_back({"ROLE"});
  async_exchange(socket, commands,
                 [where = std::move(where), done = std::move(done)](const std::string& failure,
                                                                    std::vector<Reply> replies) {
                   if (!failure.empty())
                     return done(where + ": " + failure);
                   for (const auto& r : replies)
                     if (r.is_error())
                       return done(where + ": " + r.str);
                   if (!says_primary(replies.back()))
                     return done(where + " is not the primary (a failover is under way?)");
                   done("");
                 });
}

// What a lookup asks each server it knows, and how it reads the answer: the primary's
// address, or "" and why not.
struct Question {
  std::vector<RedisEndpoint> servers;
  std::vector<Command> commands;  // the last one is the question, any before it AUTH
  std::string subject;            // "the primary 'mymaster'", for messages
  std::function<std::string(const Reply& answer, const RedisEndpoint& asked,
                            RedisEndpoint& primary)>
      read;
};

std::string read_sentinel_answer(const Reply& reply, const std::string& master,
                                 RedisEndpoint& primary) {
  if (reply.is_nil())
    return "knows no primary named '" + master + "'";
  if (!reply.is_array() || reply.elements.size() != 2)
    return "unexpected reply to SENTINEL get-master-addr-by-name";
  primary = {reply.elements[0].str, 0};
  try {
    const auto port = reply.elements[1].as_integer();
    if (port <= 0 || port > 65535 || primary.host.empty())
      return "named an invalid address";
    primary.port = static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    return "named an invalid port";
  }
  return {};
}

// CLUSTER SLOTS: [[first slot, last slot, [host, port, id, ...], replicas...], ...].
std::string read_cluster_answer(const Reply& reply, unsigned slot, const RedisEndpoint& asked,
                                RedisEndpoint& primary) {
  if (!reply.is_array())
    return "unexpected reply to CLUSTER SLOTS";
  try {
    for (const auto& range : reply.elements) {
      if (!range.is_array() || range.elements.size() < 3 || !range.elements[2].is_array() ||
          range.elements[2].elements.size() < 2)
        return "unexpected reply to CLUSTER SLOTS";
      if (slot < static_cast<unsigned long long>(range.elements[0].as_integer()) ||
          slot > static_cast<unsigned long long>(range.elements[1].as_integer()))
        continue;
      const auto& node = range.elements[2].elements;
      const auto port = node[1].as_integer();
      // An empty host is the node asked; "?" one whose address it does not know.
      primary = {node[0].str.empty() ? asked.host : node[0].str, 0};
      if (primary.host == "?" || port <= 0 || port > 65535)
        return "does not know the address of the primary of slot " + std::to_string(slot);
      primary.port = static_cast<std::uint16_t>(port);
      return {};
    }
  } catch (const std::exception&) {
    return "unexpected reply to CLUSTER SLOTS";
  }
  return "no node serves slot " + std::to_string(slot) + " (is the cluster up?)";
}

Question question_for(const RedisOptions& options) {
  Question q;
  if (!options.cluster_nodes.empty()) {
    const auto slot = key_slot(options.prefix);
    q.servers = options.cluster_nodes;
    q.commands = handshake_commands(options, false);
    q.commands.push_back({"CLUSTER", "SLOTS"});
    q.subject = "the primary of slot " + std::to_string(slot) + " ('" +
                std::string(hash_tag(options.prefix)) + "')";
    q.read = [slot](const Reply& answer, const RedisEndpoint& asked, RedisEndpoint& primary) {
      return read_cluster_answer(answer, slot, asked, primary);
    };
    return q;
  }
  q.servers = options.sentinels;
  if (!options.sentinel_password.empty())
    q.commands.push_back({"AUTH", options.sentinel_password});
  q.commands.push_back({"SENTINEL", "get-master-addr-by-name", options.sentinel_master});
  q.subject = "the primary '" + options.sentinel_master + "'";
  q.read = [master = options.sentinel_master](const Reply& answer, const RedisEndpoint&,
                                              RedisEndpoint& primary) {
    return read_sentinel_answer(answer, master, primary);
  };
  return q;
}

// One lookup: a connection to each server (sentinel or cluster node) in turn, until one names
// the primary.
class PrimaryLookup : public std::enable_shared_from_this<PrimaryLookup> {
 public:
  using Done = std::function<void(const std::string&, RedisEndpoint)>;

  PrimaryLookup(const asio::any_io_executor& executor, Question question, Done done)
      : question_(std::move(question)),
        resolver_(executor),
        socket_(executor),
        timer_(executor),
        done_(std::move(done)) {}

  void start(Clock::time_point deadline) {
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec)
        return;
      self->timed_out_ = true;  // what is in flight fails now, and no sentinel is tried after
      self->resolver_.cancel();
      std::error_code ignored;
      self->socket_.close(ignored);
    });
    try_next();
  }

 private:
  void try_next() {
    if (timed_out_ || next_ == question_.servers.size()) {
      return finish("nobody named " + question_.subject +
                        (last_failure_.empty() ? std::string() : " (" + last_failure_ + ")"),
                    {});
    }
    const auto& server = question_.servers[next_++];
    current_ = server;
    std::error_code ignored;
    socket_.close(ignored);
    resolver_.async_resolve(server.host, std::to_string(server.port),
                            [self = shared_from_this()](
                                std::error_code ec, asio::ip::tcp::resolver::results_type results) {
                              if (ec)
                                return self->failed("resolve: " + ec.message());
                              asio::async_connect(
                                  self->socket_, results,
                                  [self](std::error_code ec2, const asio::ip::tcp::endpoint&) {
                                    if (ec2)
                                      return self->failed("connect: " + ec2.message());
                                    self->ask();
                                  });
                            });
  }

  void ask() {
    async_exchange(
        socket_, question_.commands,
        [self = shared_from_this()](const std::string& failure, std::vector<Reply> replies) {
          if (!failure.empty())
            return self->failed(failure);
          for (std::size_t i = 0; i + 1 < replies.size(); ++i)
            if (replies[i].is_error())
              return self->failed("AUTH: " + replies[i].str);
          self->answered(replies.back());
        });
  }

  void answered(const Reply& reply) {
    if (reply.is_error())
      return failed(reply.str);
    RedisEndpoint primary;
    if (auto why = question_.read(reply, current_, primary); !why.empty())
      return failed(why);
    finish("", std::move(primary));
  }

  void failed(const std::string& why) {
    last_failure_ =
        endpoint_text(current_.host, current_.port) + ": " + (timed_out_ ? "timed out" : why);
    try_next();
  }

  void finish(const std::string& failure, RedisEndpoint primary) {
    if (!done_)
      return;
    timer_.cancel();
    resolver_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
    auto done = std::move(done_);
    done_ = nullptr;
    done(failure, std::move(primary));
  }

  const Question question_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  Done done_;
  std::size_t next_ = 0;
  RedisEndpoint current_;  // the server being asked
  std::string last_failure_;
  bool timed_out_ = false;
};

}  // namespace

void async_find_primary(const asio::any_io_executor& executor, const RedisOptions& options,
                        Clock::time_point deadline,
                        std::function<void(const std::string&, RedisEndpoint)> done) {
  std::make_shared<PrimaryLookup>(executor, question_for(options), std::move(done))
      ->start(deadline);
}

bool found_by_lookup(const RedisOptions& options) noexcept {
  return !options.sentinels.empty() || !options.cluster_nodes.empty();
}

void async_open(asio::ip::tcp::resolver& resolver, asio::ip::tcp::socket& socket,
                const RedisOptions& options, std::function<void(const std::string& failure)> done) {
  if (!found_by_lookup(options))
    return connect_endpoint(resolver, socket, options.host, options.port, std::move(done));
  async_find_primary(socket.get_executor(), options, Clock::now() + options.connect_timeout,
                     [&resolver, &socket, &options, done = std::move(done)](
                         const std::string& failure, RedisEndpoint primary) mutable {
                       if (!failure.empty())
                         return done(failure);
                       auto where = "the primary " + endpoint_text(primary.host, primary.port);
                       connect_endpoint(resolver, socket, primary.host, primary.port,
                                        [&socket, &options, where, done = std::move(done)](
                                            const std::string& failed) mutable {
                                          if (!failed.empty())
                                            return done(failed);
                                          check_role(socket, options, where, std::move(done));
                                        });
                     });
}

// --- SyncConnection -------------------------------------------------------------------

SyncConnection::SyncConnection(RedisOptions options) : options_(std::move(options)), socket_(io_) {}

SyncConnection::~SyncConnection() {
  close();
}

void SyncConnection::close() noexcept {
  std::error_code ignored;
  socket_.close(ignored);
}

// Starts an operation (start(done) must eventually call done(ec)) and runs the private
// io_context until it completes or the deadline passes; then it is cancelled.
template <typename Start>
std::error_code SyncConnection::wait(Start&& start, Clock::time_point deadline) {
  std::optional<std::error_code> result;
  start([&result](std::error_code ec) { result = ec; });
  io_.restart();
  while (!result && Clock::now() < deadline) {
    io_.run_one_until(deadline);
    if (io_.stopped())
      io_.restart();
  }
  if (result)
    return *result;
  close();  // cancels the operation; its handler runs below
  io_.restart();
  io_.run();
  return asio::error::timed_out;
}

void SyncConnection::ensure_connected() {
  if (socket_.is_open())
    return;
  try {
    connect(Clock::now() + options_.connect_timeout);
  } catch (...) {
    close();
    throw;
  }
}

void SyncConnection::connect(Clock::time_point deadline) {
  reader_.reset();
  RedisEndpoint target{options_.host, options_.port};
  const bool looked_up = found_by_lookup(options_);
  if (looked_up) {
    std::string failure;
    auto ec = wait(
        [&](auto done) {
          async_find_primary(
              io_.get_executor(), options_, deadline,
              [&failure, &target, done](const std::string& f, RedisEndpoint p) {
                failure = f;
                target = std::move(p);
                done(f.empty() ? std::error_code() : make_error_code(std::errc::host_unreachable));
              });
        },
        deadline);
    if (ec)
      throw std::system_error(ec, "redis " + describe(options_) + ": " +
                                      (failure.empty() ? "nobody named the primary" : failure));
  }
  asio::ip::tcp::resolver resolver(io_);
  asio::ip::tcp::resolver::results_type endpoints;
  auto ec = wait(
      [&](auto done) {
        resolver.async_resolve(target.host, std::to_string(target.port),
                               [&endpoints, done](std::error_code e, auto results) {
                                 endpoints = std::move(results);
                                 done(e);
                               });
      },
      deadline);
  if (ec == asio::error::timed_out)
    resolver.cancel();
  if (ec)
    throw std::system_error(ec, "redis " + describe(options_) + ": resolve");
  ec = wait(
      [&](auto done) {
        asio::async_connect(socket_, endpoints,
                            [done](std::error_code e, const auto&) { done(e); });
      },
      deadline);
  if (ec) {
    close();
    throw std::system_error(ec, "redis " + describe(options_) + ": connect");
  }
  socket_.set_option(asio::ip::tcp::no_delay(true));
  socket_.set_option(asio::socket_base::keep_alive(true));
  auto commands = handshake_commands(options_, true);
  if (looked_up)
    commands.push_back({"ROLE"});
  if (commands.empty())
    return;
  std::string out;
  for (const auto& c : commands)
    append_command(out, c);
  const auto replies = exchange(out, commands.size(), deadline);
  for (const auto& reply : replies) {
    if (reply.is_error()) {
      close();
      throw RedisError("redis " + describe(options_) + ": " + reply.str);
    }
  }
  if (looked_up && !says_primary(replies.back())) {
    close();
    throw RedisError("redis " + describe(options_) + ": " +
                     endpoint_text(target.host, target.port) +
                     " is not the primary (a failover is under way?)");
  }
}

std::vector<Reply> SyncConnection::exchange(const std::string& out, std::size_t count,
                                            Clock::time_point deadline) {
  auto ec = wait(
      [&](auto done) {
        asio::async_write(socket_, asio::buffer(out),
                          [done](std::error_code e, std::size_t) { done(e); });
      },
      deadline);
  if (ec) {
    close();
    throw std::system_error(ec, "redis " + describe(options_) + ": write");
  }
  std::vector<Reply> replies;
  replies.reserve(count);
  while (replies.size() < count) {
    Reply reply;
    try {
      if (reader_.next(reply)) {
        replies.push_back(std::move(reply));
        continue;
      }
    } catch (...) {
      close();
      throw;
    }
    std::size_t got = 0;
    ec = wait(
        [&](auto done) {
          socket_.async_read_some(asio::buffer(buffer_),
                                  [&got, done](std::error_code e, std::size_t n) {
                                    got = n;
                                    done(e);
                                  });
        },
        deadline);
    if (ec) {
      close();
      throw std::system_error(ec, "redis " + describe(options_) + ": read");
    }
    try {
      reader_.feed(buffer_.data(), got);
    } catch (...) {
      close();
      throw;
    }
  }
  return replies;
}

std::vector<Reply> SyncConnection::run(const std::vector<Command>& commands) {
  if (commands.empty())
    return {};
  const bool reused = socket_.is_open();
  ensure_connected();
  std::string out;
  for (const auto& c : commands)
    append_command(out, c);
  std::vector<Reply> replies;
  try {
    replies = exchange(out, commands.size(), Clock::now() + options_.command_timeout);
  } catch (const std::system_error& e) {
    // A connection kept from before a server restart fails on first use (reset, EOF):
    // the command never ran, so it is sent once more on a new connection. A timeout is
    // not retried (the command may have run).
    const auto ec = e.code();
    const bool stale = ec == asio::error::eof || ec == asio::error::connection_reset ||
                       ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
    if (!reused || !stale)
      throw;
    ensure_connected();
    return checked(exchange(out, commands.size(), Clock::now() + options_.command_timeout));
  }
  if (!refused_here(replies))
    return replies;
  // A primary demoted by a failover (READONLY), a cluster node that no longer serves the slot
  // (MOVED: every command and script names its keys, all in the one slot): nothing ran. Sent
  // once more on a connection to the primary now (through the sentinels or the cluster).
  close();
  ensure_connected();
  return checked(exchange(out, commands.size(), Clock::now() + options_.command_timeout));
}

bool SyncConnection::refused_here(const std::vector<Reply>& replies) noexcept {
  return std::any_of(replies.begin(), replies.end(), says_wrong_server);
}

std::vector<Reply> SyncConnection::checked(std::vector<Reply> replies) {
  // Refused again: the next call connects anew.
  if (refused_here(replies))
    close();
  return replies;
}

Reply SyncConnection::run(const Command& command) {
  return std::move(run(std::vector<Command>{command}).front());
}

// --- Pool -----------------------------------------------------------------------------

Pool::Pool(const RedisOptions& options, std::size_t size) {
  size = std::max<std::size_t>(size, 1);
  for (std::size_t i = 0; i < size; ++i) {
    all_.push_back(std::make_unique<SyncConnection>(options));
    free_.push_back(all_.back().get());
  }
}

Pool::Lease::Lease(Pool& p) : pool(p) {
  std::unique_lock lock(pool.mutex_);
  pool.cv_.wait(lock, [this] { return !pool.free_.empty(); });
  connection = pool.free_.back();
  pool.free_.pop_back();
}

Pool::Lease::~Lease() {
  {
    std::lock_guard lock(pool.mutex_);
    pool.free_.push_back(connection);
  }
  pool.cv_.notify_one();
}

}  // namespace notify::redis_detail
