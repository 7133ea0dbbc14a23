// RedisBus: the Bus of a fleet, over Redis Pub/Sub.
//
// Channels (P = RedisOptions::prefix, "notify:" by default):
//   P u:{redis_escape(user)}   one per user, subscribed while the user has a connection on
//                              this instance (the hub's subscribe/unsubscribe)
//   P broadcast                always subscribed: broadcasts, and a user's messages for
//                              every instance (Envelope::every_instance: session:end)
// No pattern subscription is ever made. With `sharded`, SSUBSCRIBE/SPUBLISH (Redis >= 7)
// replace SUBSCRIBE/PUBLISH; a subscription the server ends by itself (a cluster node whose
// slot moved away) drops the connection, which subscribes again where the slot is.
// One key: P session-ends, a stream of the session ends sent in the last
// session_end_retention (see Failures), trimmed and expired by Redis's clock.
//
// Messages: see encode_bus_message() below. A publisher outside C++ may publish in that
// format too (but notifications should go through a Store, which owns the ids).
//
// Connections: two TCP connections per bus, both run by the bus's own thread (an io_context
// started by start()), or, with RedisBusOptions::executor, by a strand on the host's
// executor. The listener's callbacks (on_bus_message, on_bus_subscribed, on_bus_recovered,
// on_bus_state) run there, one at a time. The second connection publishes, pipelined:
// publish() formats the command and returns without waiting for Redis's reply. When no
// earlier publish is waiting for its reply (or gather_publishes is off), the command goes to
// the socket with one non-blocking send on the caller's thread; otherwise it waits in the bus
// until the next replies are read, and what gathered meanwhile leaves in one send (so under
// load several publishes cost one system call and one wake-up of Redis, and idle none
// waits). What is waiting is bounded by publish_backlog_bytes. Messages keep the order of
// the publish() calls.
//
// state() is connected while both connections are.
//
// Failures: when the subscriber connection drops, the bus reports BusState::reconnecting,
// reconnects with backoff and jitter, subscribes every channel again, reports connected and
// calls on_bus_recovered(): the hub then brings every local connection up to date from the
// store. While the bus is not connected (or its publishing connection is not, or the backlog
// is full), publish() fails with errc::bus_unavailable at once (the hub throws to its caller).
// Messages Redis has not answered when the publishing connection fails (or after
// command_timeout) are not sent again: a client could get them twice. In both cases, when
// the message announced something the store holds (an event with a sequence number), the
// next message this bus sends is a repair request on the broadcast channel, and every
// instance brings its connections up to date from the store before it sees anything newer.
// Nothing is silently dropped: a message that is not carried is an error to the caller, or
// is repaired, or (no sequence number: send_to's ephemeral messages) is reported.
// Session ends are the exception to "not sent again", since nothing repairs them: one that
// Redis has not answered when the publishing connection fails is sent again on the next
// connection, marked with when it was first sent ("at" in the header, see below), so that a
// receiver ends only the connections it attached before then (it may have had it already).
// Session ends are not in the store, so the bus keeps them itself: a session:end is appended
// to the log and published in one script. When the subscriber connection is back, the bus
// reads the log from a little before its last sign of life (on the publishing connection,
// after the subscriptions are active, so that every end is either read or arrives live) and
// delivers each entry with Envelope::replayed_sent_at, the sending host's wall clock when
// publish() was called (end_sessions()): the hub ends only the connections it attached before
// it. So an end sent while an instance was away still ends
// the sessions it held, and a session begun since (a new login) is left alone, provided the
// hosts' clocks and Redis's agree to well within the time between a logout and a new login.
// The first subscription after start() reads the log the same way, for connections attached
// before it.
//
// start() waits (up to connect_timeout) for the first connection, so that a hub is usable as
// soon as it is constructed when Redis is up; when Redis is down it returns anyway and the
// bus keeps trying in the background. On a host's executor start() does not wait (it may run
// on the thread that runs that executor, or before anything does): publish() fails with
// errc::bus_unavailable until state() is connected.
//
// Thread safety: every member function is safe to call concurrently. On its own thread,
// stop() must not be called from a listener callback (it joins the thread). On a host's
// executor, stop() does not wait for the connections to close (that runs later on the
// executor, and what is left pending there keeps the bus's internals alive), only for a
// callback that is running on another thread; after it returns, no callback starts. The
// destructor stops.
#pragma once

#include <notify/bus.hpp>
#include <notify/redis_export.hpp>
#include <notify/redis_options.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace notify {

struct RedisBusOptions {
  RedisOptions redis;
  bool sharded = false;  // SSUBSCRIBE / SPUBLISH instead of SUBSCRIBE / PUBLISH (Redis >= 7)
  // The subscriber connection sends PING this often; no answer before the next one drops and
  // reconnects it (a silent network partition). 0 disables. An answer that refuses it for a
  // while (LOADING: a restarted Redis loading its data, which serves subscriptions meanwhile;
  // BUSY: another client's script running past busy-reply-threshold) counts as an answer,
  // and a (un)subscribe so refused is sent again after a backoff, on the same connection.
  std::chrono::milliseconds health_check_interval{10000};
  // Published messages not sent yet (gathered while a reply is awaited, or not taken by the
  // socket yet) wait here, up to this many bytes; beyond it publish() fails with
  // errc::bus_unavailable (Redis is not keeping up).
  std::size_t publish_backlog_bytes = 8u << 20;
  // A publish made while an earlier one awaits Redis's reply waits for that reply and then
  // leaves with the others that gathered (one send for several, under load). It waits at
  // most one round trip to Redis: on loopback tens of microseconds, across a network what
  // its round trip costs. false: every publish is sent at once, one send each (as
  // TCP_NODELAY turns off Nagle's algorithm).
  bool gather_publishes = true;
  // Session ends (NotificationHub::end_sessions) are also kept this long in a log in Redis,
  // so that an instance whose subscription was away when one was sent gets it once it is
  // back. An outage longer than this may miss one. 0: not kept (only published). The bus's
  // Redis user needs EVAL and the stream's commands (docs/DEPLOYMENT.md), or its session ends
  // are refused (and reported): set 0 where it may only publish.
  std::chrono::seconds session_end_retention{900};
  // Connection errors and malformed messages (default: written to stderr).
  std::function<void(std::string_view what)> on_error;
  // Where the bus's connections run. Empty (the default): a thread of the bus's own. Set (say,
  // to the executor of the io_context that serves the clients): a strand on it, so that a
  // message read from Redis is written to the local connections in the same turn, without a
  // hand-over between threads. The listener's callbacks then run on that executor (the hub's
  // on_bus_recovered() only queues the repair; its store reads run on the hub's store thread
  // with a store that may block, or in batches of 16 on the hub's executor).
  asio::any_io_executor executor;
};

class NOTIFY_REDIS_EXPORT RedisBus final : public Bus {
 public:
  explicit RedisBus(RedisBusOptions options = {});
  ~RedisBus() override;
  RedisBus(const RedisBus&) = delete;
  RedisBus& operator=(const RedisBus&) = delete;

  void start(BusListener& listener) override;
  void stop() noexcept override;
  void publish(const Envelope& envelope, std::error_code& ec) override;
  using Bus::publish;
  void subscribe(std::string_view user) override;
  void unsubscribe(std::string_view user) override;
  BusState state() const noexcept override;
  std::string_view name() const noexcept override { return "redis"; }
  // A SUBSCRIBE takes effect when Redis has read it; the bus reports its confirmation.
  bool subscriptions_confirmed_later() const noexcept override { return true; }

  const RedisBusOptions& options() const noexcept;
  std::string user_channel(std::string_view user) const;
  std::string broadcast_channel() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The message format on the channels: one header line of compact JSON, "\n", then the
// event's data (serialized JSON) byte for byte:
//   {"t":TYPE,"i":ID,"s":"SEQ","u":USER}\n DATA       an event for USER's connections
//   {"t":TYPE,"i":ID,"s":"SEQ","b":true}\n DATA       a broadcast
//   {"t":TYPE,"u":USER,"e":true}\n DATA              for USER's connections on every instance
//                                                   (sent on the broadcast channel)
//   {"t":TYPE,"u":USER,"e":true,"at":MS}\n DATA      the same, sent again: MS is when it was
//                                                   first sent (Envelope::replayed_sent_at,
//                                                   milliseconds since the epoch, rounded up)
// A RedisBus also writes "o":ORIGIN (random, one per bus) in the messages for every instance
// it sends, and does not hand its own back to its listener: the hub ended that instance's
// connections when it sent the end, and a session begun since must not end when Redis echoes
// it (a busy pipeline may take a while).
// "i" and "s" may be absent (no id; seq 0). SEQ is a decimal string (exact beyond 2^53).
// On the broadcast channel, the message {"r":true}\n (no event) asks every instance to bring
// its connections up to date from the store.
NOTIFY_REDIS_EXPORT std::string encode_bus_message(const Envelope& envelope);
// The envelope of a message (one Event::message), or nullopt when it is malformed.
NOTIFY_REDIS_EXPORT std::optional<Envelope> decode_bus_message(std::string_view message);

}  // namespace notify
