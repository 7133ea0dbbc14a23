#include <notify/error.hpp>
#include <notify/websocket_sink.hpp>

#include <asio/error.hpp>

#include <algorithm>

namespace notify {

namespace {

WireFormat format_for(const WebSocketOptions& options) {
  return options.deflate ? WireFormat::websocket_deflate : WireFormat::websocket;
}

ws::CloseCode close_code_for(std::error_code reason) {
  if (reason == errc::hub_stopped)
    return ws::CloseCode::going_away;
  if (reason == errc::slow_consumer)
    return ws::CloseCode::policy_violation;
  if (reason == errc::store_unavailable)
    return ws::CloseCode::try_again_later;
  if (reason == errc::session_ended)
    return ws::CloseCode::session_ended;
  return ws::CloseCode::normal;
}

// The close frame's reason for a violation the decoder found.
std::string_view violation_reason(ws::CloseCode code) {
  switch (code) {
    case ws::CloseCode::invalid_payload:
      return "invalid UTF-8 or compressed data";
    case ws::CloseCode::message_too_big:
      return "message too big";
    case ws::CloseCode::internal_error:
      return "internal error";
    default:
      return "protocol error";
  }
}

}  // namespace

std::shared_ptr<WebSocketSink> WebSocketSink::create(std::shared_ptr<Transport> transport,
                                                     WebSocketOptions options) {
  return std::make_shared<WebSocketSink>(std::move(transport), std::move(options));
}

std::shared_ptr<WebSocketSink> WebSocketSink::create(std::shared_ptr<Transport> transport,
                                                     const ws::HandshakeResult& handshake) {
  if (handshake.status != 101)
    throw std::invalid_argument("WebSocketSink: the handshake did not succeed");
  WebSocketOptions options;
  options.handshake_response = handshake.response;
  options.deflate = handshake.deflate;
  return create(std::move(transport), std::move(options));
}

WebSocketSink::WebSocketSink(std::shared_ptr<Transport> transport, WebSocketOptions options)
    : Sink(std::move(transport), format_for(options)),
      options_(std::move(options)),
      inflater_(options_.deflate ? std::make_unique<ws::Inflater>(*options_.deflate) : nullptr),
      tokens_(options_.message_burst),
      refilled_(std::chrono::steady_clock::now()) {
  if (!(options_.messages_per_second > 0) || !(options_.message_burst >= 1))
    throw std::invalid_argument("WebSocketOptions: the message rate and burst must be positive");
}

std::string WebSocketSink::preamble() const {
  return options_.handshake_response;
}

void WebSocketSink::on_started() {
  // The sink has taken its copy of the response (preamble()); an idle connection need not
  // keep another.
  std::string().swap(options_.handshake_response);
  start_reading();
}

bool WebSocketSink::send_message(std::string_view type, std::string data) {
  return send_direct(Event::message(std::string(type), {}, std::move(data), 0));
}

bool WebSocketSink::take_token() {
  const auto now = std::chrono::steady_clock::now();
  const std::chrono::duration<double> elapsed = now - refilled_;
  refilled_ = now;
  tokens_ =
      std::min(options_.message_burst, tokens_ + elapsed.count() * options_.messages_per_second);
  if (tokens_ < 1)
    return false;
  tokens_ -= 1;
  return true;
}

void WebSocketSink::on_input_end(std::error_code ec) {
  if (draining_) {
    if (linger_)
      linger_->cancel();
    transport()->close();
    return;
  }
  if (ec == asio::error::operation_aborted)
    return;
  fail(ec == asio::error::eof ? make_error_code(errc::connection_closed) : ec);
}

bool WebSocketSink::on_input(std::string_view bytes) {
  if (draining_)
    return true;  // closed: only waiting for the client's end
  heard_.store(true, std::memory_order_relaxed);
  if (!decoder_)
    decoder_ = std::make_unique<ws::Decoder>(options_.limits, inflater_.get());
  std::vector<ws::Message> messages;
  const auto violation = decoder_->feed(bytes, messages);
  if (!violation && decoder_->between_messages())
    decoder_.reset();
  for (auto& m : messages) {
    switch (m.opcode) {
      case ws::Opcode::ping:
        send_direct(Event::raw(ws::pong_frame(m.payload)));
        break;
      case ws::Opcode::pong:
        break;
      case ws::Opcode::close: {
        // Echo the code (RFC 6455 §5.5.1) and close once it is written.
        const auto code =
            m.close_code ? static_cast<ws::CloseCode>(m.close_code) : ws::CloseCode::no_status;
        // What was queued before (a pong, a reply to a message the client sent) goes first:
        // a ping that came before the close is answered (RFC 6455 §5.5.2).
        close_after_queue(make_error_code(errc::connection_closed),
                          Event::raw(ws::close_frame(code)));
        return false;
      }
      case ws::Opcode::text:
        if (!take_token()) {
          fail_with(ws::CloseCode::policy_violation, "too many messages");
          return false;
        }
        if (auto o = owner())
          o->on_client_message(shared_from_this(), m.payload);
        break;
      default:  // binary
        fail_with(ws::CloseCode::unsupported_data, "binary messages are not accepted");
        return false;
    }
  }
  if (violation) {
    fail_with(*violation, violation_reason(*violation));
    return false;
  }
  return true;
}

void WebSocketSink::release_transport(std::error_code) noexcept {
  // A read may be in flight (the normal loop) or not (a violation stopped it). Either way,
  // from here on bytes are read only to be discarded until the client ends its side.
  try {
    if (!transport()->shutdown_send()) {
      transport()->close();
      return;
    }
    draining_ = true;
    linger_ = std::make_unique<asio::steady_timer>(transport()->executor(), options_.close_linger);
    linger_->async_wait([self = shared_from_this(), this](std::error_code ec) {
      if (!ec)
        transport()->close();
    });
    if (!reading())
      start_reading();
  } catch (...) {
    transport()->close();
  }
}

void WebSocketSink::fail_with(ws::CloseCode code, std::string_view reason) {
  // After the answers to what the client sent before the fault.
  close_after_queue(make_error_code(errc::connection_closed),
                    Event::raw(ws::close_frame(code, reason)));
}

bool WebSocketSink::heartbeat_due(bool, bool on_time) {
  // Two sweeps without a byte from the client (not even the pong of the last ping): gone.
  // Not when this sweep came late (the process was held up: the pong may be there, unread)
  // or bytes wait in the socket that this process has not read yet.
  if (!heard_.exchange(false, std::memory_order_relaxed) && on_time &&
      !transport()->input_waiting()) {
    close_with(make_error_code(errc::connection_closed),
               Event::raw(ws::close_frame(ws::CloseCode::going_away, "ping timeout")));
    return false;
  }
  return true;
}

EventPtr WebSocketSink::farewell(std::error_code reason) const {
  return Event::raw(ws::close_frame(close_code_for(reason)));
}

// The `session:end` message, then its close code with the reason.
EventPtr WebSocketSink::session_farewell(const EventPtr& message, std::string_view reason) const {
  return Event::raw(message->encoded(format()) +
                    ws::close_frame(ws::CloseCode::session_ended, reason));
}

// The handshake's response, then a close frame that says why, when the hub could not read
// the store for a new connection (1013, try again later) or stopped before it could.
EventPtr WebSocketSink::farewell_before_start(std::error_code reason) const {
  if (reason == errc::store_unavailable || reason == errc::hub_stopped)
    return farewell(reason);
  return nullptr;
}

}  // namespace notify
