#include "connection.hpp"

#include <asio/connect.hpp>
#include <asio/error.hpp>
#include <asio/read.hpp>
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

void async_open(asio::ip::tcp::resolver& resolver, asio::ip::tcp::socket& socket,
                const RedisOptions& options, std::function<void(const std::string& failure)> done) {
  resolver.async_resolve(
      options.host, std::to_string(options.port),
      [&socket, &options, done = std::move(done)](
          std::error_code ec, asio::ip::tcp::resolver::results_type results) mutable {
        if (ec)
          return done("resolve " + options.host + ": " + ec.message());
        asio::async_connect(
            socket, results,
            [&socket, &options, done = std::move(done)](std::error_code ec2,
                                                        const asio::ip::tcp::endpoint&) {
              if (ec2)
                return done("connect to " + describe(options) + ": " + ec2.message());
              std::error_code ignored;
              socket.set_option(asio::ip::tcp::no_delay(true), ignored);
              socket.set_option(asio::socket_base::keep_alive(true), ignored);
              done("");
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
  asio::ip::tcp::resolver resolver(io_);
  asio::ip::tcp::resolver::results_type endpoints;
  auto ec = wait(
      [&](auto done) {
        resolver.async_resolve(options_.host, std::to_string(options_.port),
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
  const auto commands = handshake_commands(options_, true);
  if (commands.empty())
    return;
  std::string out;
  for (const auto& c : commands)
    append_command(out, c);
  for (const auto& reply : exchange(out, commands.size(), deadline)) {
    if (reply.is_error()) {
      close();
      throw RedisError("redis " + describe(options_) + ": " + reply.str);
    }
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
  try {
    return exchange(out, commands.size(), Clock::now() + options_.command_timeout);
  } catch (const std::system_error& e) {
    // A connection kept from before a server restart fails on first use (reset, EOF):
    // the command never ran, so it is sent once more on a new connection. A timeout is
    // not retried (the command may have run).
    const auto ec = e.code();
    const bool stale = ec == asio::error::eof || ec == asio::error::connection_reset ||
                       ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
    if (!reused || !stale)
      throw;
  }
  ensure_connected();
  return exchange(out, commands.size(), Clock::now() + options_.command_timeout);
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
