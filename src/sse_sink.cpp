#include "http_token.hpp"

#include <notify/error.hpp>
#include <notify/sse.hpp>
#include <notify/sse_sink.hpp>

#include <asio/error.hpp>

#include <stdexcept>
#include <string>

namespace notify {

std::shared_ptr<SseSink> SseSink::create(std::shared_ptr<Transport> transport, SseOptions options) {
  return std::make_shared<SseSink>(std::move(transport), std::move(options));
}

namespace {

// Each line "Name: value\r\n": a token, a colon, and a value of visible characters, spaces
// and tabs. A missing CRLF would run into the head's end; a CR or LF inside would let a
// value the host took from a request add fields, or a body.
void check_extra_headers(std::string_view fields) {
  while (!fields.empty()) {
    const auto end = fields.find("\r\n");
    if (end == std::string_view::npos)
      throw std::invalid_argument("SseOptions::extra_headers: each field must end with \\r\\n");
    const auto line = fields.substr(0, end);
    fields.remove_prefix(end + 2);
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !detail::is_token(line.substr(0, colon)))
      throw std::invalid_argument("SseOptions::extra_headers: '" + std::string(line) +
                                  "' is not Name: value");
    for (const char c : line.substr(colon + 1)) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f)
        throw std::invalid_argument(
            "SseOptions::extra_headers: a control character in the value of '" +
            std::string(line.substr(0, colon)) + "'");
    }
  }
}

}  // namespace

SseSink::SseSink(std::shared_ptr<Transport> transport, SseOptions options)
    : Sink(std::move(transport), WireFormat::sse), options_(std::move(options)) {
  check_extra_headers(options_.extra_headers);
}

std::string SseSink::preamble() const {
  std::string out;
  if (options_.write_head) {
    out += sse::response_head();
    out += options_.extra_headers;
    out += "\r\n";
  }
  if (options_.retry.count() > 0)
    sse::append_retry(out, options_.retry);
  return out;
}

// When the hub could not read the store for a new connection: a stream with a comment that
// ends, as EventSource reconnects after a stream that ends, where an HTTP error status would
// make it give up for good.
EventPtr SseSink::farewell_before_start(std::error_code reason) const {
  if (reason == errc::store_unavailable)
    return Event::raw(": the store is unavailable; reconnect later\n\n");
  return nullptr;
}

// Reading only tells when the client goes away; a client has nothing to say on an event
// stream, so whatever it sends is ignored.
void SseSink::on_started() {
  if (transport()->can_read())
    start_reading();
}

bool SseSink::on_input(std::string_view) {
  return true;
}

void SseSink::on_input_end(std::error_code ec) {
  if (ec == asio::error::operation_aborted)
    return;
  fail(ec == asio::error::eof ? make_error_code(errc::connection_closed) : ec);
}

}  // namespace notify
