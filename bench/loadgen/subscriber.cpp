#include "subscriber.hpp"

#include "ws.hpp"

#include <asio/connect.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <system_error>

namespace loadgen {
namespace {

using asio::ip::tcp;

constexpr std::size_t max_head_bytes = 16 * 1024;
// Deferred reads: how often arrivals are collected (and so how late they may be stamped).
constexpr auto edge_collect_interval = std::chrono::milliseconds(1);
constexpr std::string_view record_key = "\"data\":{\"t\":";
constexpr std::string_view id_key = "\"id\":\"";

// Where the id of the notification whose "data":{"t":N} starts at `record` begins: its "id"
// member comes after the data when the hub wrote the notification (memory and SQLite stores)
// and before it when the Redis store did. A WebSocket message also has an "id" of its own
// ahead of its "data", and a batch carries several notifications, so an "id" counts only if
// no brace of another object lies between it and the data.
std::size_t id_of(std::string_view body, std::size_t record) {
  constexpr auto npos = std::string_view::npos;
  const auto data_end = body.find('}', record + record_key.size());
  if (data_end == npos)
    return npos;
  const auto after = body.find(id_key, data_end + 1);
  if (after != npos && body.find('}', data_end + 1) > after)
    return after + id_key.size();
  const auto before = body.rfind(id_key, record);
  if (before != npos && body.find_first_of("{}", before) >= record)
    return before + id_key.size();
  return npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The value of header `name` (lower case, with the colon) in `head`, trimmed; empty if absent.
std::string header_value(const std::string& head, std::string_view name) {
  const std::string low = lower(head);
  const auto at = low.find(std::string("\r\n") + std::string(name));
  if (at == std::string::npos)
    return {};
  auto begin = at + 2 + name.size();
  const auto end = head.find("\r\n", begin);
  while (begin < end && (head[begin] == ' ' || head[begin] == '\t'))
    ++begin;
  auto stop = end;
  while (stop > begin && (head[stop - 1] == ' ' || head[stop - 1] == '\t'))
    --stop;
  return head.substr(begin, stop - begin);
}

}  // namespace

// --- Subscriber --------------------------------------------------------------------------

Subscriber::Subscriber(Pool& pool, std::size_t index)
    : pool_(pool), index_(index), socket_(pool.io_) {}

void Subscriber::start() {
  const auto& cfg = pool_.config_;
  std::error_code ec;
  socket_.open(tcp::v4(), ec);
  if (!ec && cfg.source_addresses > 0) {
    // Let the kernel pick the port at connect() time, per destination: 28k ephemeral ports
    // per source address and destination.
    int one = 1;
    ::setsockopt(socket_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    const auto source =
        static_cast<asio::ip::address_v4::uint_type>(0x7f000002u + index_ % cfg.source_addresses);
    socket_.bind(tcp::endpoint(asio::ip::address_v4(source), 0), ec);
  }
  if (ec) {
    // Never fail inside start(): the pool would recurse into starting the next one.
    const std::string why = "socket: " + ec.message();
    asio::post(pool_.io_, [this, why] { fail(why.c_str()); });
    return;
  }
  socket_.async_connect(cfg.server, [this](std::error_code e) { on_connected(e); });
}

void Subscriber::on_connected(std::error_code ec) {
  if (closed_)
    return;
  if (ec)
    return fail(("connect: " + ec.message()).c_str());
  std::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.native_non_blocking(true, ignored);
  const auto& cfg = pool_.config_;
  const std::string user = "u" + std::to_string(index_);
  if (cfg.protocol == Protocol::sse) {
    request_ = "GET /api/notifications/stream?user=" + user + " HTTP/1.1\r\nHost: " + cfg.host +
               "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";
  } else {
    const auto key = ws::make_key(pool_.rng_);
    ws_accept_ = ws::expected_accept(key);
    request_ = "GET /api/notifications/ws?user=" + user + " HTTP/1.1\r\nHost: " + cfg.host +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
               "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  }
  asio::async_write(socket_, asio::buffer(request_), [this](std::error_code e, std::size_t) {
    if (e && !closed_)
      fail(("write: " + e.message()).c_str());
  });
  wait_readable();
}

void Subscriber::wait_readable() {
  socket_.async_wait(tcp::socket::wait_read, [this](std::error_code ec) { on_readable(ec); });
}

void Subscriber::on_readable(std::error_code ec) {
  if (closed_ || ec == asio::error::operation_aborted)  // closed, or parked
    return;
  if (ec)
    return fail(("wait: " + ec.message()).c_str());
  if (read_available(now_ns()))
    wait_readable();
}

int Subscriber::park() {
  // Whatever arrived before is read now, so that the bytes waiting in the socket are those
  // of the deferred phase.
  if (closed_ || !read_available(now_ns()))
    return -1;
  std::error_code ec;
  parked_ = socket_.release(ec);  // aborts the readiness wait
  if (ec) {
    parked_ = -1;
    fail(("release: " + ec.message()).c_str());
  }
  return parked_;
}

void Subscriber::read_deferred() {
  if (parked_ < 0)  // closed before the phase
    return;
  std::error_code ec;
  socket_.assign(tcp::v4(), parked_, ec);
  if (ec) {
    ::close(parked_);
    parked_ = -1;
    return fail(("assign: " + ec.message()).c_str());
  }
  parked_ = -1;
  socket_.native_non_blocking(true, ec);
  // The bytes up to each collection's count arrived by its time: a notification completed
  // by them is stamped with it. Bytes no collection saw are read last, stamped now.
  bool open = true;
  std::size_t done = 0;
  for (const auto& arrival : arrivals_) {
    if (!open)
      break;
    open = read_available(arrival.at, arrival.unread - done);
    done = arrival.unread;
  }
  arrivals_.clear();
  if (open) {
    late_ = true;
    open = read_available(now_ns());
    late_ = false;
  }
  if (open)
    wait_readable();
}

void Subscriber::note_arrival(std::int64_t when) {
  int unread = 0;
  if (::ioctl(parked_, FIONREAD, &unread) != 0 || unread <= 0)
    return;
  const auto bytes = static_cast<std::size_t>(unread);
  if (arrivals_.empty() || bytes > arrivals_.back().unread)
    arrivals_.push_back(Arrival{when, bytes});
}

bool Subscriber::read_available(std::int64_t now, std::size_t limit) {
  auto& buffer = pool_.buffer_;
  const int fd = socket_.native_handle();
  while (limit > 0) {
    const auto want = std::min(limit, buffer.size());
    const ssize_t n = ::recv(fd, buffer.data(), want, 0);
    if (n > 0) {
      feed(buffer.data(), static_cast<std::size_t>(n), now);
      if (closed_)
        return false;
      limit -= static_cast<std::size_t>(n);
      // A short read emptied the socket: new data will make it readable again.
      if (static_cast<std::size_t>(n) < want)
        return true;
      continue;
    }
    if (n == 0) {
      fail("closed by the server");
      return false;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return true;
    fail(std::strerror(errno));
    return false;
  }
  return true;
}

void Subscriber::feed(const char* p, std::size_t n, std::int64_t now) {
  if (!head_done_) {
    feed_head(p, n, now);
    return;
  }
  pool_.stats.bytes += n;
  if (pool_.config_.protocol == Protocol::ws) {
    feed_ws(p, n, now);
  } else if (chunked_) {
    feed_chunked(p, n, now);
  } else {
    feed_sse(p, n, now);
  }
}

bool Subscriber::feed_head(const char* p, std::size_t n, std::int64_t now) {
  carry_.append(p, n);
  const auto end = carry_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (carry_.size() > max_head_bytes)
      fail("response head too large");
    return false;
  }
  const std::string head = carry_.substr(0, end + 2);  // keeps the last header's CRLF
  const std::string rest = carry_.substr(end + 4);
  carry_.clear();
  const bool ws = pool_.config_.protocol == Protocol::ws;
  const std::string_view want = ws ? "HTTP/1.1 101" : "HTTP/1.1 200";
  if (head.compare(0, want.size(), want) != 0) {
    const auto line = head.substr(0, head.find("\r\n"));
    fail(("unexpected response: " + line).c_str());
    return false;
  }
  if (ws) {
    if (header_value(head, "sec-websocket-accept:") != ws_accept_) {
      fail("wrong Sec-WebSocket-Accept");
      return false;
    }
  } else {
    chunked_ = lower(header_value(head, "transfer-encoding:")) == "chunked";
  }
  head_done_ = true;
  if (!rest.empty())
    feed(rest.data(), rest.size(), now);
  return true;
}

// HTTP/1.1 chunked transfer coding (what a Node response without Content-Length uses).
void Subscriber::feed_chunked(const char* p, std::size_t n, std::int64_t now) {
  std::size_t i = 0;
  while (i < n && !closed_) {
    const char c = p[i];
    switch (chunk_) {
      case Chunk::size:
        if (std::isxdigit(static_cast<unsigned char>(c))) {
          const int v =
              c <= '9' ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10);
          chunk_left_ = chunk_left_ * 16 + static_cast<std::uint64_t>(v);
        } else if (c == ';') {
          chunk_ = Chunk::ext;
        } else if (c == '\r') {
          chunk_ = Chunk::size_lf;
        } else {
          return fail("bad chunk size");
        }
        ++i;
        break;
      case Chunk::ext:
        if (c == '\r')
          chunk_ = Chunk::size_lf;
        ++i;
        break;
      case Chunk::size_lf:
        if (c != '\n')
          return fail("bad chunk size line");
        ++i;
        if (chunk_left_ == 0) {
          chunk_ = Chunk::done;
          return fail("the server ended the stream");
        }
        chunk_ = Chunk::data;
        break;
      case Chunk::data: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, n - i));
        feed_sse(p + i, take, now);
        i += take;
        chunk_left_ -= take;
        if (chunk_left_ == 0)
          chunk_ = Chunk::data_cr;
        break;
      }
      case Chunk::data_cr:
        if (c != '\r')
          return fail("bad chunk end");
        chunk_ = Chunk::data_lf;
        ++i;
        break;
      case Chunk::data_lf:
        if (c != '\n')
          return fail("bad chunk end");
        chunk_ = Chunk::size;
        ++i;
        break;
      case Chunk::done:
        return;
    }
  }
}

void Subscriber::feed_sse(const char* p, std::size_t n, std::int64_t now) {
  if (carry_.empty()) {
    const auto used = parse_sse(p, n, now);
    if (used < n && !closed_)
      carry_.assign(p + used, n - used);
    return;
  }
  carry_.append(p, n);
  const auto used = parse_sse(carry_.data(), carry_.size(), now);
  carry_.erase(0, used);
}

// Parses the complete events in p[0, n); returns the bytes they took.
std::size_t Subscriber::parse_sse(const char* p, std::size_t n, std::int64_t now) {
  std::size_t pos = 0;
  while (pos < n && !closed_) {
    const void* hit = ::memmem(p + pos, n - pos, "\n\n", 2);
    if (hit == nullptr)
      break;
    const auto len = static_cast<std::size_t>(static_cast<const char*>(hit) - (p + pos));
    const std::string_view block(p + pos, len);
    pos += len + 2;
    if (block.empty())
      continue;
    if (block[0] == ':') {
      ++pool_.stats.heartbeats;
      continue;
    }
    std::string_view type = "message";
    std::size_t at = std::string_view::npos;
    if (block.compare(0, 7, "event: ") == 0) {
      at = 7;
    } else if (const auto nl = block.find("\nevent: "); nl != std::string_view::npos) {
      at = nl + 8;
    }
    if (at != std::string_view::npos) {
      const auto eol = block.find('\n', at);
      type = block.substr(at, eol == std::string_view::npos ? std::string_view::npos : eol - at);
    } else if (block.compare(0, 6, "retry:") == 0) {
      continue;
    }
    if (type == "heartbeat") {
      ++pool_.stats.heartbeats;
      continue;
    }
    on_message(type, block, now);
  }
  return pos;
}

void Subscriber::feed_ws(const char* p, std::size_t n, std::int64_t now) {
  if (carry_.empty()) {
    const auto used = parse_ws(p, n, now);
    if (used < n && !closed_)
      carry_.assign(p + used, n - used);
    return;
  }
  carry_.append(p, n);
  const auto used = parse_ws(carry_.data(), carry_.size(), now);
  if (!closed_)
    carry_.erase(0, used);
}

std::size_t Subscriber::parse_ws(const char* p, std::size_t n, std::int64_t now) {
  std::size_t pos = 0;
  while (pos < n && !closed_) {
    ws::FrameHeader h;
    const auto hl = ws::parse_header(reinterpret_cast<const unsigned char*>(p) + pos, n - pos, h);
    if (hl == 0 || n - pos - hl < h.length)
      break;
    if (h.masked) {
      fail("the server sent a masked frame");
      break;
    }
    const std::string_view payload(p + pos + hl, static_cast<std::size_t>(h.length));
    pos += hl + static_cast<std::size_t>(h.length);
    switch (h.opcode) {
      case ws::text:
      case ws::binary:
        if (h.fin) {
          // {"type":"T",...}
          std::string_view type;
          if (payload.compare(0, 9, "{\"type\":\"") == 0) {
            const auto q = payload.find('"', 9);
            if (q != std::string_view::npos)
              type = payload.substr(9, q - 9);
          }
          on_message(type, payload, now);
        } else {
          message_.assign(payload);
          message_opcode_ = h.opcode;
        }
        break;
      case ws::continuation:
        message_.append(payload);
        if (h.fin) {
          std::string whole;
          whole.swap(message_);
          std::string_view type;
          if (whole.compare(0, 9, "{\"type\":\"") == 0) {
            const auto q = whole.find('"', 9);
            if (q != std::string::npos)
              type = std::string_view(whole).substr(9, q - 9);
          }
          on_message(type, whole, now);
        }
        break;
      case ws::ping:
        ++pool_.stats.heartbeats;
        send_frame(ws::masked_frame(ws::pong, payload, pool_.rng_));
        break;
      case ws::pong:
        break;
      case ws::close:
        send_frame(ws::masked_frame(
            ws::close, payload.substr(0, std::min<std::size_t>(2, payload.size())), pool_.rng_));
        fail("the server closed the WebSocket");
        break;
      default:
        fail("unknown WebSocket opcode");
        break;
    }
  }
  return pos;
}

void Subscriber::on_message(std::string_view type, std::string_view body, std::int64_t now) {
  auto& stats = pool_.stats;
  if (type == "heartbeat")  // counted where it is read: a WebSocket's with its ping
    return;
  if (type == "init" || type == "notifications:reset") {
    if (type != "init")
      ++stats.resets;
    if (!ready_) {
      ready_ = true;
      pool_.on_ready();
    }
    return;
  }
  const bool batch = type == "notifications:batch";
  if (!batch && type != "notification")
    return;
  if (batch)
    ++stats.batches;
  if (late_)  // deferred reads: bytes that no collection saw, stamped when read
    ++stats.unmatched;
  const std::int64_t epoch = pool_.config_.epoch_ns;
  const char* end = body.data() + body.size();
  std::size_t at = 0;
  while ((at = body.find(record_key, at)) != std::string_view::npos) {
    const auto id_at = id_of(body, at);
    at += record_key.size();
    if (id_at == std::string_view::npos)
      break;
    const auto t = parse_u64(body.data() + at, end);
    const auto id = parse_u64(body.data() + id_at, end);
    if (id <= last_id_) {
      ++stats.duplicates;
      continue;
    }
    last_id_ = id;
    ++stats.received;
    stats.latency.add(now - (epoch + static_cast<std::int64_t>(t)));
    stats.last_delivery_ns = now;
  }
}

void Subscriber::send_frame(std::string frame) {
  if (closed_)
    return;
  if (writing_) {
    out_next_ += frame;
    return;
  }
  out_ = std::move(frame);
  write_next();
}

void Subscriber::write_next() {
  writing_ = true;
  asio::async_write(socket_, asio::buffer(out_), [this](std::error_code ec, std::size_t) {
    writing_ = false;
    if (ec || closed_)
      return;
    if (!out_next_.empty()) {
      out_.swap(out_next_);
      out_next_.clear();
      write_next();
    }
  });
}

void Subscriber::say_goodbye() {
  if (closed_ || !ready_ || pool_.config_.protocol != Protocol::ws)
    return;
  const char code[2] = {static_cast<char>(1000 >> 8), static_cast<char>(1000 & 0xff)};
  send_frame(ws::masked_frame(ws::close, std::string_view(code, 2), pool_.rng_));
}

void Subscriber::close() {
  closed_ = true;
  if (parked_ >= 0) {
    ::close(parked_);
    parked_ = -1;
  }
  std::error_code ignored;
  socket_.close(ignored);
}

void Subscriber::fail(const char* why) {
  if (closed_)
    return;
  closed_ = true;
  std::error_code ignored;
  socket_.close(ignored);
  pool_.on_failed(why, ready_);
}

// --- Pool --------------------------------------------------------------------------------

Pool::Pool(asio::io_context& io, PoolConfig config)
    : io_(io),
      config_(std::move(config)),
      buffer_(256 * 1024),
      rng_(std::random_device{}()),
      edge_timer_(io) {}

Pool::~Pool() {
  close_all();
  if (edge_set_ >= 0)
    ::close(edge_set_);
}

void Pool::open(std::size_t count) {
  const auto first = subscribers_.size();
  subscribers_.reserve(first + count);
  for (std::size_t i = 0; i < count; ++i)
    subscribers_.push_back(std::make_unique<Subscriber>(*this, first + i));
  start_more();
}

void Pool::start_more() {
  while (in_flight_ < config_.connect_concurrency && next_ < subscribers_.size()) {
    ++in_flight_;
    subscribers_[next_++]->start();
  }
}

void Pool::on_ready() {
  ++ready_;
  --in_flight_;
  start_more();
}

void Pool::on_failed(const std::string& why, bool was_ready) {
  if (first_error_.empty())
    first_error_ = why;
  if (was_ready) {
    ++closed_after_ready_;
    return;
  }
  ++failed_;
  --in_flight_;
  start_more();
}

void Pool::say_goodbye() {
  for (auto& s : subscribers_)
    s->say_goodbye();
}

void Pool::defer_reads(bool on) {
  if (on == deferred())
    return;
  if (on) {
    edge_set_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (edge_set_ < 0)
      throw std::system_error(errno, std::generic_category(), "epoll_create1");
    for (std::size_t i = 0; i < subscribers_.size(); ++i) {
      const int fd = subscribers_[i]->park();
      if (fd < 0)
        continue;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLET;
      ev.data.u64 = i;
      if (::epoll_ctl(edge_set_, EPOLL_CTL_ADD, fd, &ev) != 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
    collect_edges();
    return;
  }
  take_edges();
  edge_timer_.cancel();
  // A new edge set for the next phase: this one forgets its descriptors.
  ::close(edge_set_);
  edge_set_ = -1;
  for (auto& s : subscribers_)
    s->read_deferred();
}

void Pool::collect_edges() {
  edge_timer_.expires_after(edge_collect_interval);
  edge_timer_.async_wait([this](std::error_code ec) {
    if (ec || !deferred())
      return;
    take_edges();
    collect_edges();
  });
}

void Pool::take_edges() {
  epoll_event events[512];
  for (;;) {
    const int n = ::epoll_wait(edge_set_, events, 512, 0);
    if (n <= 0)
      return;
    const auto now = now_ns();
    for (int i = 0; i < n; ++i) {
      subscribers_[events[i].data.u64]->note_arrival(now);
      ++stats.arrivals;
    }
    if (n < 512)
      return;
  }
}

void Pool::close_all() {
  for (auto& s : subscribers_)
    s->close();
}

}  // namespace loadgen
