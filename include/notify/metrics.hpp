// HubMetrics: a point-in-time copy of a hub's counters, and its Prometheus rendering.
//
// Thread safety: a plain value; render_prometheus is a pure function.
#pragma once

#include <notify/export.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace notify {

struct HubMetrics {
  std::uint64_t connections_sse = 0;  // open now, by wire protocol
  std::uint64_t connections_websocket = 0;
  std::uint64_t client_messages = 0;     // messages received from WebSocket clients
  std::uint64_t connections_opened = 0;  // attached since start
  std::uint64_t events_delivered = 0;    // events whose bytes were written to a connection
  std::uint64_t bytes_delivered = 0;
  std::uint64_t publishes = 0;  // notifications published (one per recipient user)
  // publishes answered with an earlier one's id: their idempotency key was known
  std::uint64_t publish_replays = 0;
  std::uint64_t resyncs = 0;  // queues collapsed into a reset snapshot
  std::uint64_t slow_consumer_disconnects = 0;
  std::uint64_t sessions_ended = 0;  // connections ended by end_session()/end_sessions()
  std::uint64_t rejected_connections = 0;
  std::uint64_t heartbeats = 0;
  // New connections whose cursor the store no longer knows, or that missed more than
  // max_replay notifications or max_prime_bytes of them: sent a reset.
  std::uint64_t resets_unknown_cursor = 0;
  std::uint64_t gap_repairs = 0;     // connections brought up to date after a bus outage
  std::uint64_t handler_errors = 0;  // exceptions caught from hooks and parts
  // Open connections waiting for their user's bus subscription before their init
  // (HubOptions::subscription_wait), and those primed without it when the wait ran out.
  std::uint64_t connections_awaiting_subscription = 0;
  // Connections queued for a store read of the hub's (their first init with a store that may
  // block, a gap repair, a reset): a backlog after a reconnect storm or an outage.
  std::uint64_t connections_awaiting_read = 0;
  std::uint64_t subscription_waits_expired = 0;
  // Calls queued and not yet taken by the store thread (async_publish*(), async_mark*(),
  // async_list(); the hub's own reads are counted in connections_awaiting_read), and the
  // store calls that the thread made for the publishes (append_all) and for the read-state
  // changes (mark_many).
  std::uint64_t publishes_pending = 0;
  std::uint64_t publish_batches = 0;
  std::uint64_t mark_batches = 0;
  // Microseconds the store thread spent in its calls (writes and reads), finished ones only:
  // its rate is how busy the thread is, and near one second per second, the store is what
  // the queue waits for.
  std::uint64_t store_thread_busy_us = 0;
  std::string bus_state;  // "connected", "reconnecting", "stopped"
};

// The Prometheus text exposition format (version 0.0.4) of `m`; every metric is named
// notify_*.
NOTIFY_EXPORT std::string render_prometheus(const HubMetrics& m, std::string_view bus_name);

}  // namespace notify
