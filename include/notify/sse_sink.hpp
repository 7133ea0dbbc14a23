// SseSink: a Sink that speaks Server-Sent Events.
//
// When it owns the connection (the default) it writes the HTTP/1.1 response head first
// (see sse::response_head()); when the host's framework has written the head, pass
// `write_head = false` and it writes only the event stream. It watches the connection for
// the client going away when the transport can read.
//
// Thread safety: as Sink.
#pragma once

#include <notify/sink.hpp>

#include <array>
#include <chrono>
#include <memory>

namespace notify {

struct SseOptions {
  bool write_head = true;                 // false when the host writes the head
  std::chrono::milliseconds retry{2000};  // the client's reconnection delay; 0: not sent
  // Added to the head, each "Name: value\r\n" (anything else throws std::invalid_argument).
  std::string extra_headers;
};

class NOTIFY_EXPORT SseSink final : public Sink {
 public:
  // Throws std::invalid_argument for extra_headers that are not "Name: value\r\n" fields.
  static std::shared_ptr<SseSink> create(std::shared_ptr<Transport> transport,
                                         SseOptions options = {});

  SseSink(std::shared_ptr<Transport> transport, SseOptions options);

  std::string_view protocol() const noexcept override { return "sse"; }

 private:
  std::string preamble() const override;
  void on_started() override;
  bool on_input(std::string_view bytes) override;
  void on_input_end(std::error_code ec) override;
  EventPtr farewell_before_start(std::error_code reason) const override;

  SseOptions options_;
};

}  // namespace notify
