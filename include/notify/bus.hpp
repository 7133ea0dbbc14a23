// Bus: carries events between the hub instances of a fleet.
//
// The hub publishes every event on the bus and delivers to its local connections only
// what the bus hands back, so one instance and a fleet behave the same. A bus is a
// doorbell, not a log: the Store is the source of truth, and after a bus outage the hub
// brings connections up to date from the store. The one exception is what the store does
// not hold, the end of a user's sessions: a bus that can keep those for a while delivers
// the ones it missed again after an outage (Envelope::replayed_sent_at).
//
// Thread safety: every member function is safe to call concurrently. Listener callbacks
// may run on any thread, including inside publish() (InProcessBus does so).
#pragma once

#include <notify/event.hpp>
#include <notify/export.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace notify {

// One message on the bus: an event for one user's connections, or for all of them.
struct Envelope {
  std::string user;  // empty when broadcast
  bool broadcast = false;
  EventPtr event;
  // For one user's connections, yet sent to every instance as a broadcast is, whether or not
  // it has the user's subscription yet: an instance may hold a connection whose subscription
  // is still on its way (session:end must reach it). A bus that cannot do this sends it as a
  // user's message.
  bool every_instance = false;
  // Set when the bus delivers an every_instance message again after it was away (it may
  // have been missed), or sends it again after its connection failed (it may have gone out):
  // when it was first sent. The hub applies such a session:end only to the connections it
  // attached before then, so that a session begun since is not ended.
  std::optional<std::chrono::system_clock::time_point> replayed_sent_at{};
};

enum class BusState { connected, reconnecting, stopped };

class BusListener {
 public:
  virtual ~BusListener() = default;
  virtual void on_bus_message(const Envelope& envelope) = 0;
  // The bus was away and is back: messages may have been missed. The hub brings every local
  // connection up to date from the store (gap repair).
  virtual void on_bus_recovered() {}
  // The subscription to a user's channel is active (it may have been requested before):
  // what was published meanwhile is repaired from the store for that user's connections.
  virtual void on_bus_subscribed(std::string_view user) { (void)user; }
  virtual void on_bus_state(BusState state) { (void)state; }
};

class NOTIFY_EXPORT Bus {
 public:
  virtual ~Bus();

  // Starts delivering to `listener`, which outlives the bus's use of it (until stop()).
  virtual void start(BusListener& listener) = 0;
  virtual void stop() noexcept = 0;

  // Sends an envelope to every instance, this one included.
  virtual void publish(const Envelope& envelope, std::error_code& ec) = 0;
  void publish(const Envelope& envelope);  // throws std::system_error

  // Interest in a user's channel: called when the user's first local connection arrives
  // and when the last one leaves. Broadcasts are always received.
  virtual void subscribe(std::string_view user) = 0;
  virtual void unsubscribe(std::string_view user) = 0;

  virtual BusState state() const noexcept = 0;
  virtual std::string_view name() const noexcept = 0;
  // True when a subscribe() takes effect later, and the bus says when: with
  // BusListener::on_bus_subscribed, or with on_bus_recovered after it reconnected. The hub
  // then primes a user's first connections once the subscription is active, from one store
  // read, instead of priming at once and repairing when it is confirmed. Default: false,
  // a subscription takes effect at once.
  virtual bool subscriptions_confirmed_later() const noexcept { return false; }
};

}  // namespace notify
