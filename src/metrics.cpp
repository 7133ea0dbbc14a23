#include <notify/metrics.hpp>

#include <fmt/format.h>

#include <iterator>

namespace notify {
namespace {

void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value, std::string_view labels = {}) {
  fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0}{3} {4}\n", name,
                 help, type, labels, value);
}

}  // namespace

std::string render_prometheus(const HubMetrics& m, std::string_view bus_name) {
  std::string out;
  out.reserve(2048);
  fmt::format_to(std::back_inserter(out),
                 "# HELP notify_connections Open client connections by protocol.\n"
                 "# TYPE notify_connections gauge\n"
                 "notify_connections{{protocol=\"sse\"}} {}\n"
                 "notify_connections{{protocol=\"websocket\"}} {}\n",
                 m.connections_sse, m.connections_websocket);
  metric(out, "notify_client_messages_total", "counter",
         "Messages received from WebSocket clients.", m.client_messages);
  metric(out, "notify_connections_opened_total", "counter", "Connections attached since start.",
         m.connections_opened);
  metric(out, "notify_events_delivered_total", "counter", "Events written to client connections.",
         m.events_delivered);
  metric(out, "notify_bytes_delivered_total", "counter", "Bytes written to client connections.",
         m.bytes_delivered);
  metric(out, "notify_publishes_total", "counter", "Notifications published (one per recipient).",
         m.publishes);
  metric(out, "notify_publish_replays_total", "counter",
         "Publishes answered with an earlier publish's id (a known idempotency key).",
         m.publish_replays);
  metric(out, "notify_resyncs_total", "counter",
         "Slow connections whose queue collapsed into a reset snapshot.", m.resyncs);
  metric(out, "notify_slow_consumer_disconnects_total", "counter",
         "Connections closed because they could not keep up.", m.slow_consumer_disconnects);
  metric(out, "notify_sessions_ended_total", "counter",
         "Connections ended by the host (end_session, end_sessions).", m.sessions_ended);
  metric(out, "notify_rejected_connections_total", "counter",
         "Connections refused by a limit or a stopped hub.", m.rejected_connections);
  metric(out, "notify_heartbeats_total", "counter", "Heartbeat sweeps times connections.",
         m.heartbeats);
  metric(out, "notify_resets_unknown_cursor_total", "counter",
         "Connections that resumed from an unknown or too old cursor.", m.resets_unknown_cursor);
  metric(out, "notify_gap_repairs_total", "counter",
         "Connections brought up to date from the store after a bus outage.", m.gap_repairs);
  metric(out, "notify_handler_errors_total", "counter", "Exceptions caught from parts and hooks.",
         m.handler_errors);
  metric(out, "notify_connections_awaiting_subscription", "gauge",
         "Connections waiting for their user's bus subscription before their init.",
         m.connections_awaiting_subscription);
  metric(out, "notify_connections_awaiting_read", "gauge",
         "Connections queued for a store read: a first init, a gap repair or a reset.",
         m.connections_awaiting_read);
  metric(out, "notify_subscription_waits_expired_total", "counter",
         "Connections primed without their bus subscription: it was not confirmed in time.",
         m.subscription_waits_expired);
  metric(out, "notify_publishes_pending", "gauge",
         "Calls queued for the store thread: async publishes, read changes and lists.",
         m.publishes_pending);
  metric(out, "notify_publish_batches_total", "counter",
         "Store calls that wrote queued async_publish() calls, each one transaction or pipeline.",
         m.publish_batches);
  metric(out, "notify_mark_batches_total", "counter",
         "Store calls that made queued read-state changes, each one transaction.", m.mark_batches);
  fmt::format_to(std::back_inserter(out),
                 "# HELP notify_store_thread_busy_seconds_total Time the store thread spent in "
                 "its calls.\n"
                 "# TYPE notify_store_thread_busy_seconds_total counter\n"
                 "notify_store_thread_busy_seconds_total {}.{:06}\n",
                 m.store_thread_busy_us / 1000000, m.store_thread_busy_us % 1000000);
  metric(out, "notify_bus_connected", "gauge", "1 when the bus carries messages.",
         m.bus_state == "connected" ? 1 : 0, fmt::format("{{bus=\"{}\"}}", bus_name));
  return out;
}

}  // namespace notify
