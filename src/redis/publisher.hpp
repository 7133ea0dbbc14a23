// Publisher: RedisBus's publishing connection, pipelined.
//
// publish() does not wait for Redis's reply, so a host's I/O thread is never parked on a
// round trip and publishes from many threads do not queue behind one. When no command is
// waiting for its reply, publish() hands the command to the socket with one non-blocking send
// on the caller's thread. Otherwise the command joins a backlog, and when the next replies
// are read, what gathered there leaves in one send: Nagle's rule, with Redis's replies as
// the acknowledgements. Idle, every publish leaves at once; busy (requests handled back to
// back while a reply is on its way), several leave together, for one system call and one
// wake-up of Redis. Without `gather`, every command is sent at once. What a send cannot take
// (a full socket buffer) waits in the same bounded backlog, written by the bus's executor.
// The bus's executor also connects, reconnects with backoff, and reads the replies: one per
// command, in order.
//
// Lost doorbells: a command handed over but not yet answered when the connection fails may
// or may not have reached Redis. Those messages are not sent again (a receiver could get them
// twice); if any of them was repairable (see publish()), the first command on the next
// connection is `repair_command`, a message on the broadcast channel that asks every
// instance to bring its connections up to date from the store. A reply that never comes
// (command_timeout) fails the connection the same way, and a refused publish() asks for the same
// repair, ahead of the next message. The exception is a command given with a `resend` form
// (a session end, which nothing can repair): that form goes out on the next connection, after
// the repair request, and again on the one after should that one fail before its reply too.
//
// Reads: query() sends a command whose reply matters (the bus's replay of session ends) in the
// same pipeline; its reply goes to a callback, in order with the others.
//
// A reply that says the server is the wrong one now (READONLY, MOVED: says_wrong_server), or
// that it runs nothing for a while (LOADING after a restart, the cluster down after a
// failover, BUSY: says_try_again), ends the connection there: the command it refused did not
// run, so it and the ones after it count as unanswered, as when a connection fails (a query
// is answered as by a failed connection, a resend form goes on the next connection, a lost
// doorbell asks for the repair). After a "not now" the backoff keeps growing across
// connections until Redis runs what it refused, so that a session end logged by a script is
// not lost while a cluster is down, and not asked again in a tight loop.
//
// Thread safety: publish() and ready() from any thread. Everything else runs on `executor`
// (the bus's: its own thread's io_context, or a strand on the host's), one at a time.
// Handlers hold `owner` (given to start()) when it is set, so that the bus outlives what it
// left pending on a host's context; with no owner, stop() runs before the context is
// destroyed.
#pragma once

#include "connection.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace notify::redis_detail {

class Publisher {
 public:
  struct Hooks {
    std::function<void(const std::string&)> report;  // failures, error replies
    std::function<void()> first_attempt_done;        // connected, or the first attempt failed
    std::function<void()> became_ready;              // each time a connection is ready
  };
  // A query's reply, or nullptr when the connection failed (or stopped) before it.
  using QueryDone = std::function<void(const Reply*)>;

  Publisher(asio::any_io_executor executor, RedisOptions options, std::string repair_command,
            std::size_t max_backlog_bytes, bool gather, Hooks hooks);
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  void start(std::weak_ptr<void> owner);
  void stop();

  // errc::bus_unavailable while not connected, or when the backlog is full. `repairable`:
  // the message announces something the store holds (an event with a sequence number), so
  // its loss or refusal calls for the repair; other messages are not repeated. A pending
  // repair request goes out ahead of the message: a receiver must repair before it sees a
  // later sequence number, or it would repair from there, past what was refused.
  // `resend` (not empty): what to send instead, on the next connection, should this one fail
  // before Redis answered `command` (a form receivers can take twice).
  void publish(std::string_view command, bool repairable, std::error_code& ec,
               std::string resend = {});
  // The bus refused a message itself (its subscriber connection is away).
  void refused(bool repairable);
  // Sends a pending repair request now if connected (else the next connection starts with it).
  void send_pending_repair();
  bool ready() const noexcept;
  // On the bus's executor: sends `command` (formatted) ahead of later publishes, past the
  // backlog's bound if need be. false, without calling `done`, when not connected. `done` is
  // kept until the reply (or the connection's end) and called from a handler that holds the
  // owner: it must not hold the owner itself, or the two keep each other alive.
  bool query(std::string_view command, QueryDone done);

 private:
  struct Connection {
    explicit Connection(const asio::any_io_executor& executor) : socket(executor) {}
    asio::ip::tcp::socket socket;
    Reader reader;
    std::array<char, 4096> buffer{};
    std::string out;  // being written on the bus's executor
    bool write_active = false;
    std::size_t handshake_pending = 0;
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  void hand_over_locked(std::string_view command, bool repairable);
  void hand_over_repair_locked();  // if one is pending; mutex_ held, ready_

  // On the bus's executor.
  void connect();
  void on_tcp_connected(const ConnectionPtr& conn);
  void become_ready(const ConnectionPtr& conn);
  void drain();
  void write_out(const ConnectionPtr& conn);  // conn->out, then drain()
  void read(const ConnectionPtr& conn);
  void on_reply(const Reply& reply, std::uint64_t number);  // number: 1 for the first
  // Counts `replies` more answered commands and sends what gathered meanwhile.
  void acknowledge(std::uint64_t replies);
  // One non-blocking send; the bytes it took (0 when the socket took none or failed: the
  // executor's asynchronous write finds the failure).
  std::size_t send_locked(std::string_view bytes);
  void start_draining_locked();  // the executor writes backlog_ from now on
  void arm_watchdog(const ConnectionPtr& conn);
  void fail(const std::string& why);
  // After refusals ("not now"): once nothing refused waits any more, the backoff and the
  // failure count start over.
  void settle();
  // The commands left unanswered; their resend forms move to resend_next_.
  std::uint64_t close_connection();
  void first_attempt_finished();
  std::shared_ptr<void> keep() const { return owner_.lock(); }  // for a handler to hold

  const asio::any_io_executor executor_;
  const RedisOptions options_;
  const std::string repair_command_;
  const std::size_t max_backlog_bytes_;
  const bool gather_;
  Hooks hooks_;

  // On the bus's executor only.
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_, reconnect_timer_, watchdog_timer_;
  Backoff backoff_;
  ConnectionPtr conn_;
  std::uint64_t watched_acked_ = 0;  // acked_ at the watchdog's last look
  bool watched_waiting_ = false;     // a reply was due at the watchdog's last look
  unsigned long failures_in_row_ = 0;
  unsigned long refusals_in_row_ = 0;  // connections ended by a "not now" (says_try_again)
  unsigned long error_replies_ = 0;
  bool stopping_ = false;
  bool first_attempt_done_ = false;
  std::deque<std::pair<std::uint64_t, QueryDone>> queries_;  // by the number of their reply

  // Shared with publish() callers.
  mutable std::mutex mutex_;
  std::weak_ptr<void> owner_;          // set by start(), before the first connection
  std::atomic<bool> ready_{false};     // written under mutex_, read by ready() without it
  int fd_ = -1;                        // the connection's socket while ready_
  std::uint64_t sent_ = 0;             // commands handed to this connection (sent or in backlog_)
  std::uint64_t acked_ = 0;            // replies read on it (written on the executor only)
  std::uint64_t last_repairable_ = 0;  // sent_ as of the last repairable one
  // What waits to be sent, in order: gathered while a reply is awaited, or what a send could
  // not take. Not empty and not draining_ only while sent_ > acked_: the next acknowledge()
  // sends it.
  std::string backlog_;
  bool draining_ = false;       // the executor owns writing: callers append to backlog_
  bool repair_needed_ = false;  // a repairable message was lost or refused: repair next
  // The resend forms of the commands given one, by the number of their reply, until answered.
  std::deque<std::pair<std::uint64_t, std::string>> unanswered_resends_;
  std::vector<std::string> resend_next_;  // for the next connection, after the repair
};

}  // namespace notify::redis_detail
