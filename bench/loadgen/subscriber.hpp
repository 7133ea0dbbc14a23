// The subscribers: C connections (SSE or WebSocket) to users u0..u{C-1}, each waiting for
// its `init` and then counting every notification it receives: latency from the `t` the
// publisher put in the notification's data, duplicates by id (ids increase per connection).
//
// All of it runs on one io_context thread. Reads use a readiness wait and non-blocking
// recv() into one shared buffer, so an idle connection costs no buffer of its own.
//
// Deferred reads (Pool::defer_reads): the connections leave Asio's reactor, so that arriving
// bytes wake nobody, and read nothing until the pool reads everything at the end of a
// phase. Meanwhile every millisecond the pool collects the sockets that received something
// since the last collection (an edge-triggered epoll set of its own that nobody waits on)
// and notes the time and how many bytes each now holds (FIONREAD); each notification read
// at the end gets the time of the first collection that saw its last byte, however the
// bytes came in segments, so latencies read up to 1 ms high. A delivery then costs the load
// generator a share of an epoll_wait and an ioctl instead of a wake-up, a read and a parse:
// on a machine with few cores, a server with several threads is then not measured against
// the load generator's share of the CPU. It suits paced loads, whose unread bytes fit the
// sockets' receive buffers, and latencies well above a millisecond.
#pragma once

#include "common.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace loadgen {

enum class Protocol { sse, ws };

struct DeliveryStats {
  std::uint64_t received = 0;    // notifications, each counted once per connection
  std::uint64_t duplicates = 0;  // an id at or below one this connection already had
  std::uint64_t resets = 0;      // notifications:reset (the server dropped a queue)
  std::uint64_t batches = 0;     // notifications:batch events
  std::uint64_t heartbeats = 0;  // SSE comments, WebSocket pings
  std::uint64_t arrivals = 0;    // deferred reads: sockets found readable by a collection
  std::uint64_t unmatched = 0;   // deferred reads: notifications completed by bytes that no
                                 // collection saw (stamped when read, so late)
  std::uint64_t bytes = 0;       // stream bytes after the response head
  std::int64_t last_delivery_ns = 0;
  Histogram latency;
};

struct PoolConfig {
  Protocol protocol = Protocol::sse;
  asio::ip::tcp::endpoint server;
  std::string host;                   // Host header
  std::size_t source_addresses = 32;  // connect from 127.0.0.2 .. 127.0.0.{1+N}
  std::size_t connect_concurrency = 256;
  std::int64_t epoch_ns = 0;  // what `t` in a notification is relative to
};

class Pool;

class Subscriber {
 public:
  Subscriber(Pool& pool, std::size_t index);
  void start();
  // WebSocket: a masked close frame (1000); SSE: nothing. Then close() later.
  void say_goodbye();
  void close();
  // Deferred reads: park() reads what is there, takes the socket out of Asio's reactor and
  // returns its descriptor (-1 when closed); note_arrival() records that a collection at
  // `when` found it readable; read_deferred() puts it back and reads what it holds.
  int park();
  void note_arrival(std::int64_t when);
  void read_deferred();
  bool ready() const noexcept { return ready_; }
  bool closed() const noexcept { return closed_; }

 private:
  void on_connected(std::error_code ec);
  void wait_readable();
  void on_readable(std::error_code ec);
  // Reads what the socket holds, at most `limit` bytes, stamping what it completes with
  // `now`; false when the connection failed.
  bool read_available(std::int64_t now,
                      std::size_t limit = std::numeric_limits<std::size_t>::max());
  void feed(const char* p, std::size_t n, std::int64_t now);
  bool feed_head(const char* p, std::size_t n, std::int64_t now);
  void feed_chunked(const char* p, std::size_t n, std::int64_t now);
  void feed_sse(const char* p, std::size_t n, std::int64_t now);
  std::size_t parse_sse(const char* p, std::size_t n, std::int64_t now);
  void feed_ws(const char* p, std::size_t n, std::int64_t now);
  std::size_t parse_ws(const char* p, std::size_t n, std::int64_t now);
  void on_message(std::string_view type, std::string_view body, std::int64_t now);
  void send_frame(std::string frame);
  void write_next();
  void fail(const char* why);

  Pool& pool_;
  std::size_t index_;
  asio::ip::tcp::socket socket_;
  std::string request_;
  std::string ws_accept_;
  std::string carry_;     // bytes of an incomplete head, event or frame
  std::string message_;   // a fragmented WebSocket message being reassembled
  std::string out_;       // WebSocket frames being written
  std::string out_next_;  // frames queued behind them
  // Deferred reads: at each collection that found new bytes, its time and the bytes then
  // waiting in the socket.
  struct Arrival {
    std::int64_t at;
    std::size_t unread;
  };
  std::vector<Arrival> arrivals_;
  std::uint64_t last_id_ = 0;
  std::uint64_t chunk_left_ = 0;
  enum class Chunk : std::uint8_t {
    size,
    ext,
    size_lf,
    data,
    data_cr,
    data_lf,
    done
  } chunk_ = Chunk::size;
  std::uint8_t message_opcode_ = 0;
  bool head_done_ = false;
  bool chunked_ = false;
  bool ready_ = false;
  bool closed_ = false;
  bool writing_ = false;
  int parked_ = -1;    // the descriptor while out of Asio's reactor
  bool late_ = false;  // reading bytes that no collection saw
};

class Pool {
 public:
  Pool(asio::io_context& io, PoolConfig config);
  ~Pool();
  // Starts `count` subscribers, at most connect_concurrency handshakes at a time.
  void open(std::size_t count);
  std::size_t size() const noexcept { return subscribers_.size(); }
  std::size_t ready() const noexcept { return ready_; }
  std::size_t failed() const noexcept { return failed_; }
  std::size_t closed_after_ready() const noexcept { return closed_after_ready_; }
  const std::string& first_error() const noexcept { return first_error_; }
  void say_goodbye();
  void close_all();
  // On: connections note arrivals and read nothing. Off: every connection reads and parses
  // what it holds, each notification stamped with its arrival.
  void defer_reads(bool on);
  bool deferred() const noexcept { return edge_set_ >= 0; }

  DeliveryStats stats;

 private:
  friend class Subscriber;
  void start_more();
  void on_ready();
  void on_failed(const std::string& why, bool was_ready);
  void collect_edges();
  void take_edges();

  asio::io_context& io_;
  PoolConfig config_;
  std::vector<std::unique_ptr<Subscriber>> subscribers_;
  std::vector<char> buffer_;
  std::mt19937_64 rng_;
  std::size_t next_ = 0;
  std::size_t in_flight_ = 0;
  std::size_t ready_ = 0;
  std::size_t failed_ = 0;
  std::size_t closed_after_ready_ = 0;
  std::string first_error_;
  int edge_set_ = -1;  // epoll descriptor while reads are deferred
  asio::steady_timer edge_timer_;
};

}  // namespace loadgen
