// WebSocketSink: a Sink that speaks WebSocket (RFC 6455) on a connection whose opening
// handshake the host has validated with ws::accept_handshake().
//
// It writes the handshake's 101 response first (unless the host already did), sends every
// event as a text frame {"type":T,"id":ID,"data":D} — compressed with permessage-deflate when
// negotiated, the compressed frame shared by every connection of a fan-out — answers pings,
// pings the client on every heartbeat sweep and closes a client that stayed silent for two,
// echoes the close handshake, and fails any protocol violation with the RFC's close code.
// Sink::end_session() sends the `session:end` message, then close code 4401.
// After its close frame is written it half-closes the TCP connection and reads until the
// client closes too (at most `close_linger`), so that a client still sending gets the close
// frame rather than a reset (RFC 6455 §7.1.1).
// Text messages from the client go to the hub (read receipts, host handlers); a client that
// sends more than the rate allows is closed with 1008. A close the client asked for or caused
// (its close frame, a violation, the rate) comes after the answers to what it sent before
// (pongs, replies); one that pings or sends without reading the answers is closed with 1008
// once they reach the queue's limits (Sink::send_direct).
//
// Thread safety: as Sink.
#pragma once

#include <notify/sink.hpp>
#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>
#include <notify/ws_handshake.hpp>

#include <asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

namespace notify {

struct WebSocketOptions {
  // The handshake's response, written before the first frame; empty when the host wrote it.
  std::string handshake_response;
  // Set when permessage-deflate was negotiated (HandshakeResult::deflate).
  std::optional<ws::DeflateParams> deflate;
  ws::DecoderLimits limits;                      // 1 MiB per message: larger closes with 1009
  double messages_per_second = 20;               // sustained rate of client messages
  double message_burst = 40;                     // messages allowed at once above the rate
  std::chrono::milliseconds close_linger{2000};  // wait for the client's end after a close
};

class NOTIFY_EXPORT WebSocketSink final : public Sink {
 public:
  static std::shared_ptr<WebSocketSink> create(std::shared_ptr<Transport> transport,
                                               WebSocketOptions options = {});
  // Convenience: options from a successful handshake.
  static std::shared_ptr<WebSocketSink> create(std::shared_ptr<Transport> transport,
                                               const ws::HandshakeResult& handshake);

  WebSocketSink(std::shared_ptr<Transport> transport, WebSocketOptions options);

  std::string_view protocol() const noexcept override { return "websocket"; }

  // Sends a message {"type":T,"data":D} to this connection only (D is JSON text).
  bool send_message(std::string_view type, std::string data);

 private:
  std::string preamble() const override;
  EventPtr farewell_before_start(std::error_code reason) const override;
  void on_started() override;
  bool on_input(std::string_view bytes) override;
  void on_input_end(std::error_code ec) override;
  bool heartbeat_due(bool wrote_since_last, bool on_time) override;
  EventPtr farewell(std::error_code reason) const override;
  EventPtr session_farewell(const EventPtr& message, std::string_view reason) const override;
  void release_transport(std::error_code reason) noexcept override;
  void fail_with(ws::CloseCode code, std::string_view reason);
  bool take_token();

  WebSocketOptions options_;
  std::unique_ptr<ws::Inflater> inflater_;
  // Made when bytes arrive and dropped again between messages: most connections are quiet
  // (a pong per heartbeat) and need no decoder state in between.
  std::unique_ptr<ws::Decoder> decoder_;
  std::atomic<bool> heard_{true};  // bytes arrived since the last ping
  bool draining_ = false;          // closed: reading only to see the client's end
  std::unique_ptr<asio::steady_timer> linger_;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
};

}  // namespace notify
