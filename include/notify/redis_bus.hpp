// RedisBus: the Bus of a fleet, over Redis Pub/Sub.
//
// Channels (P = RedisOptions::prefix, "notify:" by default):
//   P u:{redis_escape(user)}   one per user, subscribed while the user has a connection on
//                              this instance (the hub's subscribe/unsubscribe)
//   P broadcast                always subscribed
// No pattern subscription is ever made. With `sharded`, SSUBSCRIBE/SPUBLISH (Redis >= 7)
// replace SUBSCRIBE/PUBLISH.
//
// Messages: see encode_bus_message() below. A publisher outside C++ may publish in that
// format too (but notifications should go through a Store, which owns the ids).
//
// Connections: two TCP connections per bus. The subscriber connection is asynchronous and
// runs on the bus's own thread (an io_context started by start()); the listener's callbacks
// (on_bus_message, on_bus_subscribed, on_bus_recovered, on_bus_state) run on that thread,
// one at a time. publish() uses a second, blocking connection (under a mutex, with
// RedisOptions' timeouts) on the caller's thread.
//
// Failures: when the subscriber connection drops, the bus reports BusState::reconnecting,
// reconnects with backoff and jitter, subscribes every channel again, reports connected and
// calls on_bus_recovered(): the hub then brings every local connection up to date from the
// store. While the bus is not connected, publish() fails with errc::bus_unavailable at once
// (the hub throws to its caller; a notification is already in the store then, so clients
// get it by gap repair). Nothing is silently dropped: a failed publish is an error.
//
// start() waits (up to connect_timeout) for the first connection, so that a hub is usable as
// soon as it is constructed when Redis is up; when Redis is down it returns anyway and the
// bus keeps trying in the background.
//
// Thread safety: every member function is safe to call concurrently. stop() must not be
// called from a listener callback (it joins the bus's thread); the destructor stops.
#pragma once

#include <notify/bus.hpp>
#include <notify/redis_export.hpp>
#include <notify/redis_options.hpp>

#include <chrono>
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
  // reconnects it (a silent network partition). 0 disables.
  std::chrono::milliseconds health_check_interval{10000};
  // Connection errors and malformed messages (default: written to stderr).
  std::function<void(std::string_view what)> on_error;
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
// "i" and "s" may be absent (no id; seq 0). SEQ is a decimal string (exact beyond 2^53).
NOTIFY_REDIS_EXPORT std::string encode_bus_message(const Envelope& envelope);
// The envelope of a message (one Event::message), or nullopt when it is malformed.
NOTIFY_REDIS_EXPORT std::optional<Envelope> decode_bus_message(std::string_view message);

}  // namespace notify
