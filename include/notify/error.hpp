// Error codes of notify's I/O paths, in the style of Asio: an enum, its category, and
// std::error_code interop. Misuse of the API throws instead (std::invalid_argument,
// std::logic_error); see each function.
#pragma once

#include <notify/export.hpp>

#include <system_error>

namespace notify {

enum class errc {
  hub_stopped = 1,             // the hub was stopped; nothing more is accepted
  too_many_connections,        // the hub's total connection limit is reached
  too_many_user_connections,   // the user's connection limit is reached
  slow_consumer,               // the connection could not keep up and the policy is `disconnect`
  connection_closed,           // the sink was closed before the operation ran
  already_attached,            // a sink can be attached once
  bus_unavailable,             // the bus cannot carry messages right now
  invalid_cursor,              // a resume cursor was malformed (attach answers it with a reset)
  too_many_pending_publishes,  // async_publish: HubOptions::max_pending_publishes are queued
  store_unavailable,           // the store could not be read for a connection: reconnect later
  session_ended,               // the host ended the session (Sink::end_session, end_sessions)
};

NOTIFY_EXPORT const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace notify

template <>
struct std::is_error_code_enum<notify::errc> : std::true_type {};
