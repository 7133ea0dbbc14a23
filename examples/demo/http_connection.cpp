#include "http_connection.hpp"

#include <asio/dispatch.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cctype>
#include <climits>
#include <string_view>
#include <utility>
#include <variant>

namespace demo {
namespace {

// Bytes of a request head besides the url, names and values: request line and header line
// punctuation. Only an estimate; http-parser's own limit catches anything pathological.
constexpr std::size_t request_line_overhead = 16;
constexpr std::size_t header_line_overhead = 4;  // ": " and CRLF
// After an error response, bytes read and dropped while waiting for the client to see it.
constexpr std::size_t linger_max_bytes = 4 * 1024 * 1024;
constexpr std::chrono::milliseconds linger_timeout{2000};

// A keep-alive connection reuses the capacity of its request and response strings, so that
// its requests after the first allocate nothing to be parsed and answered. A buffer that an
// unusually large request or response left behind is given back instead of being kept for the
// connection's life: what an idle connection holds stays near what a usual request needs.
constexpr std::size_t max_kept_body = 16 * 1024;    // a body, a response
constexpr std::size_t max_kept_head_string = 1024;  // the target, a header's name or value
constexpr std::size_t max_kept_header_slots = 64;

// Empties `s`, keeping its buffer unless it is larger than `limit`.
void clear_keeping_at_most(std::string& s, std::size_t limit) {
  if (s.capacity() > limit)
    std::string().swap(s);
  else
    s.clear();
}

void lower_in_place(std::string& s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
}

bool is_space_or_tab(char c) {
  return c == ' ' || c == '\t';
}

// Whether `line` starts as a request line would, "TOKEN SP target SP HTTP/": a method that
// http-parser does not know (501), rather than bytes that are not HTTP at all (400).
bool names_a_method(std::string_view line) {
  const auto is_tchar = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  };
  const auto space = line.find(' ');
  if (space == 0 || space == std::string_view::npos ||
      !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(space), is_tchar))
    return false;
  const auto target_end = line.find(' ', space + 1);
  if (target_end == std::string_view::npos || target_end == space + 1)
    return false;
  return line.substr(target_end + 1, 5) == "HTTP/";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

HttpConnection& self_of(http_parser* p) {
  return *static_cast<HttpConnection*>(p->data);
}

}  // namespace

HttpConnection::HttpConnection(ClientStream stream, Api& api, ConnectionLimits limits)
    : stream_(std::move(stream)), timer_(stream_.get_executor()), api_(api), limits_(limits) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

HttpConnection::~HttpConnection() = default;

const http_parser_settings& HttpConnection::settings() noexcept {
  static const http_parser_settings s = [] {
    http_parser_settings v;
    http_parser_settings_init(&v);
    v.on_message_begin = &HttpConnection::on_message_begin;
    v.on_url = &HttpConnection::on_url;
    v.on_header_field = &HttpConnection::on_header_field;
    v.on_header_value = &HttpConnection::on_header_value;
    v.on_headers_complete = &HttpConnection::on_headers_complete;
    v.on_body = &HttpConnection::on_body;
    v.on_message_complete = &HttpConnection::on_message_complete;
    return v;
  }();
  return s;
}

void HttpConnection::start() {
  // Runs on the connection's own executor, ordered with stop().
  asio::post(timer_.get_executor(), [self = shared_from_this()] {
    if (self->closed_)
      return;
    std::error_code ignored;
    self->stream_.tcp().set_option(asio::ip::tcp::no_delay(true), ignored);
    self->arm_timer(self->limits_.idle_timeout);
    self->read_more();
  });
}

void HttpConnection::stop() {
  asio::post(timer_.get_executor(), [self = shared_from_this()] { self->close(); });
}

// --- parsing --------------------------------------------------------------------------

bool HttpConnection::count_head(std::size_t n) {
  head_bytes_ += n;
  if (head_bytes_ <= limits_.max_head_bytes)
    return true;
  refusal_ = Refusal::head_too_large;
  return false;
}

bool HttpConnection::finish_header() {
  if (!field_.empty() || in_value_) {
    // http-parser takes "Name : value" as a field named "Name ", which a proxy may read as
    // "Name": RFC 9112 section 5.1 has it refused.
    if (is_space_or_tab(field_.back())) {
      refusal_ = Refusal::space_before_colon;
      return false;
    }
    // It keeps the spaces that end a value; they are not part of it (RFC 9110 section 5.5).
    while (!value_.empty() && is_space_or_tab(value_.back()))
      value_.pop_back();
    // Header slots of earlier requests are written over; on_headers_complete drops the
    // ones this request did not use.
    auto& headers = request_.headers;
    if (header_count_ == headers.size())
      headers.emplace_back();
    auto& [name, value] = headers[header_count_++];
    name.assign(field_);
    lower_in_place(name);
    value.swap(value_);
  }
  field_.clear();
  value_.clear();
  in_value_ = false;
  return true;
}

void HttpConnection::reset_request() {
  HttpRequest& r = request_;
  r.method.clear();
  for (std::string* s : {&r.target, &r.path, &r.query, &url_, &field_, &value_})
    clear_keeping_at_most(*s, max_kept_head_string);
  clear_keeping_at_most(r.body, max_kept_body);
  if (r.headers.capacity() > max_kept_header_slots) {
    decltype(r.headers)().swap(r.headers);
  } else {
    for (auto& [name, value] : r.headers) {
      clear_keeping_at_most(name, max_kept_head_string);
      clear_keeping_at_most(value, max_kept_head_string);
    }
  }
  r.keep_alive = true;
  r.http_version = 11;
  header_count_ = 0;
}

int HttpConnection::on_message_begin(http_parser* p) {
  HttpConnection& c = self_of(p);
  c.reset_request();
  c.in_value_ = false;
  c.in_message_ = true;
  c.expect_continue_ = false;
  c.head_bytes_ = request_line_overhead;
  c.refusal_ = Refusal::none;
  c.arm_timer(c.limits_.request_timeout);
  return 0;
}

int HttpConnection::on_url(http_parser* p, const char* at, std::size_t n) {
  HttpConnection& c = self_of(p);
  if (!c.count_head(n))
    return 1;
  c.url_.append(at, n);
  return 0;
}

int HttpConnection::on_header_field(http_parser* p, const char* at, std::size_t n) {
  HttpConnection& c = self_of(p);
  if (c.in_value_ && !c.finish_header())
    return 1;
  if (c.field_.empty() && !c.count_head(header_line_overhead))
    return 1;
  if (!c.count_head(n))
    return 1;
  c.field_.append(at, n);
  return 0;
}

int HttpConnection::on_header_value(http_parser* p, const char* at, std::size_t n) {
  HttpConnection& c = self_of(p);
  if (!c.count_head(n))
    return 1;
  c.in_value_ = true;
  c.value_.append(at, n);
  return 0;
}

int HttpConnection::on_headers_complete(http_parser* p) {
  HttpConnection& c = self_of(p);
  if (!c.finish_header())
    return -1;
  HttpRequest& r = c.request_;
  r.headers.resize(c.header_count_);
  r.method = http_method_str(static_cast<http_method>(p->method));
  r.target = c.url_;
  r.http_version = p->http_major * 10u + p->http_minor;

  // Debian's http-parser is built without its strict checks, and takes a chunked body whose
  // framing a strict proxy would refuse (any two bytes where a CRLF belongs); it also merges
  // trailer fields into the head. Rather than frame a body differently from what may stand
  // in front, the demo takes bodies with a Content-Length only (RFC 9110 section 15.5.12).
  if (r.header("transfer-encoding") != nullptr) {
    c.refusal_ = Refusal::transfer_coding;
    return -1;
  }

  // A Content-Length above the limit is refused before its body arrives.
  const bool has_length = p->content_length != ULLONG_MAX && p->content_length > 0;
  if (has_length && p->content_length > c.limits_.max_body_bytes) {
    c.refusal_ = Refusal::body_too_large;
    return -1;
  }
  // An HTTP/1.0 client does not know 100 Continue (RFC 9110 section 10.1.1).
  if (has_length && r.http_version >= 11) {
    if (const std::string* expect = r.header("expect"); expect && iequals(*expect, "100-continue"))
      c.expect_continue_ = true;
  }
  if (has_length)
    r.body.reserve(static_cast<std::size_t>(p->content_length));
  return 0;
}

int HttpConnection::on_body(http_parser* p, const char* at, std::size_t n) {
  HttpConnection& c = self_of(p);
  c.expect_continue_ = false;  // the client sent its body anyway
  if (c.request_.body.size() + n > c.limits_.max_body_bytes) {
    c.refusal_ = Refusal::body_too_large;
    return 1;
  }
  c.request_.body.append(at, n);
  return 0;
}

int HttpConnection::on_message_complete(http_parser* p) {
  HttpConnection& c = self_of(p);
  c.request_.keep_alive = http_should_keep_alive(p) != 0 && p->upgrade == 0;
  c.in_message_ = false;
  // One request at a time: process() answers it, then resumes the parser.
  http_parser_pause(p, 1);
  return 0;
}

// --- the read / answer loop -----------------------------------------------------------

void HttpConnection::read_more() {
  stream_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](std::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void HttpConnection::on_read(std::error_code ec, std::size_t n) {
  if (closed_)
    return;
  if (ec) {
    // EOF between requests is the normal end of a keep-alive connection; in the middle of a
    // request there is nobody left to answer.
    close();
    return;
  }
  input_.assign(read_buffer_.data(), n);
  input_offset_ = 0;
  process();
}

void HttpConnection::process() {
  while (!closed_) {
    const std::size_t available = input_.size() - input_offset_;
    if (available == 0) {
      input_.clear();
      input_offset_ = 0;
      if (expect_continue_) {
        send_continue();
      } else {
        read_more();
      }
      return;
    }
    const std::string_view attempted(input_.data() + input_offset_, available);
    const std::size_t parsed =
        http_parser_execute(&parser_, &settings(), attempted.data(), attempted.size());
    input_offset_ += std::min(parsed, available);
    const auto err = static_cast<http_errno>(parser_.http_errno);
    if (err == HPE_PAUSED) {
      http_parser_pause(&parser_, 0);
      handle_request();
      return;
    }
    if (err != HPE_OK) {
      respond_to_parse_error(attempted);
      return;
    }
    if (parser_.upgrade) {
      // Not reached in practice (the request completes first); nothing more to parse.
      input_offset_ = input_.size();
    } else if (parsed < available) {
      respond_to_parse_error(attempted);
      return;
    }
  }
}

void HttpConnection::handle_request() {
  // Answered in place: the next request's on_message_begin resets it.
  HttpRequest& request = request_;
  expect_continue_ = false;

  http_parser_url url;
  http_parser_url_init(&url);
  if (http_parser_parse_url(request.target.data(), request.target.size(), 0, &url) != 0 ||
      (url.field_set & (1u << UF_PATH)) == 0) {
    send(HttpResponse::error(400, "bad request target"), false);
    return;
  }
  const auto assign_field = [&](std::string& to, http_parser_url_fields f) {
    if ((url.field_set & (1u << f)) == 0)
      to.clear();
    else
      to.assign(request.target, url.field_data[f].off, url.field_data[f].len);
  };
  assign_field(request.path, UF_PATH);
  assign_field(request.query, UF_QUERY);
  if (request.http_version / 10 != 1) {
    send(HttpResponse::error(505, "only HTTP/1.x is served here"), false);
    return;
  }
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1, at most one in HTTP/1.0.
  const auto hosts = std::count_if(request.headers.begin(), request.headers.end(),
                                   [](const auto& h) { return h.first == "host"; });
  if (hosts > 1 || (hosts == 0 && request.http_version >= 11)) {
    send(HttpResponse::error(400, "a request needs exactly one Host header"), false);
    return;
  }

  Api::Outcome outcome = api_.handle(request);
  if (auto* stream = std::get_if<StreamRequest>(&outcome)) {
    hand_over();
    api_.open_stream(std::move(stream_), std::move(*stream));
    return;
  }
  if (auto* upgrade = std::get_if<WebSocketRequest>(&outcome)) {
    // A client sends no frame before it has read the 101, so no byte of the WebSocket is
    // left in input_.
    hand_over();
    api_.open_websocket(std::move(stream_), std::move(*upgrade));
    return;
  }
  if (auto* pending = std::get_if<PendingResponse>(&outcome)) {
    // No read until the answer is out, as for any response. The write timeout covers the
    // wait: a store that does not answer closes the connection.
    arm_timer(limits_.write_timeout);
    pending->start([self = shared_from_this(), keep_alive = request.keep_alive,
                    head_only = request.method == "HEAD"](HttpResponse response) {
      auto executor = self->stream_.get_executor();
      asio::dispatch(executor, [self, keep_alive, head_only, response = std::move(response)] {
        if (!self->closed_)
          self->send(response, keep_alive, head_only);
      });
    });
    return;
  }
  if (auto* raw = std::get_if<RawResponse>(&outcome)) {
    send_bytes(std::move(raw->bytes), false);
    return;
  }
  send(std::get<HttpResponse>(outcome), request.keep_alive, request.method == "HEAD");
}

void HttpConnection::respond_to_parse_error(std::string_view attempted) {
  const auto err = static_cast<http_errno>(parser_.http_errno);
  if (refusal_ == Refusal::head_too_large || err == HPE_HEADER_OVERFLOW) {
    send(HttpResponse::error(431, "request header fields too large (limit 16 KiB)"), false);
  } else if (refusal_ == Refusal::body_too_large) {
    send(HttpResponse::error(413, "request body too large (limit 1 MiB)"), false);
  } else if (refusal_ == Refusal::space_before_colon) {
    send(HttpResponse::error(400, "bad request: whitespace between a header's name and colon"),
         false);
  } else if (refusal_ == Refusal::transfer_coding) {
    send(HttpResponse::error(411, "a request body needs a Content-Length (no Transfer-Encoding)"),
         false);
  } else if (err == HPE_INVALID_METHOD && names_a_method(attempted)) {
    send(HttpResponse::error(501, "method not implemented"), false);
  } else {
    send(HttpResponse::error(400, std::string("bad request: ") + http_errno_description(err)),
         false);
  }
}

void HttpConnection::hand_over() {
  // The socket leaves this connection: cancel everything of ours before it is moved out.
  closed_ = true;
  ++timer_generation_;
  timer_.cancel();
}

void HttpConnection::send(const HttpResponse& response, bool keep_alive, bool head_only) {
  // request_ is the one answered: the next is parsed once this response is out.
  serialize_into(out_, response, keep_alive, head_only, request_.http_version < 11);
  write_out(keep_alive);
}

void HttpConnection::send_bytes(std::string bytes, bool keep_alive) {
  out_ = std::move(bytes);
  write_out(keep_alive);
}

void HttpConnection::write_out(bool keep_alive) {
  writing_ = true;
  arm_timer(limits_.write_timeout);
  stream_.async_write(asio::buffer(out_),
                      [self = shared_from_this(), keep_alive](std::error_code ec, std::size_t) {
                        self->on_sent(ec, keep_alive);
                      });
}

void HttpConnection::on_sent(std::error_code ec, bool keep_alive) {
  writing_ = false;
  clear_keeping_at_most(out_, max_kept_body);
  if (closed_)
    return;
  if (ec) {
    close();
    return;
  }
  if (!keep_alive) {
    linger_close();
    return;
  }
  arm_timer(limits_.idle_timeout);
  process();  // the next pipelined request, if it is already here
}

void HttpConnection::send_continue() {
  expect_continue_ = false;
  static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
  writing_ = true;
  stream_.async_write(asio::buffer(continue_line.data(), continue_line.size()),
                      [self = shared_from_this()](std::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (self->closed_)
                          return;
                        if (ec) {
                          self->close();
                          return;
                        }
                        self->read_more();
                      });
}

// --- timeouts and closing -------------------------------------------------------------

void HttpConnection::arm_timer(std::chrono::milliseconds timeout) {
  deadline_ = std::chrono::steady_clock::now() + timeout;
  // A wait in flight that ends no later than the new deadline waits again from there: a
  // request then costs no cancellation and no new wait (three per request otherwise).
  if (timer_waiting_ && timer_.expiry() <= deadline_)
    return;
  wait_for_deadline();
}

void HttpConnection::wait_for_deadline() {
  const unsigned generation = ++timer_generation_;
  timer_waiting_ = true;
  timer_.expires_at(deadline_);
  timer_.async_wait([self = shared_from_this(), generation](std::error_code ec) {
    if (generation != self->timer_generation_)
      return;  // replaced by a newer wait, or the connection closed
    self->timer_waiting_ = false;
    if (ec || self->closed_)
      return;
    if (std::chrono::steady_clock::now() < self->deadline_) {
      self->wait_for_deadline();
      return;
    }
    self->on_timeout();
  });
}

void HttpConnection::on_timeout() {
  if (in_message_ && !writing_) {
    // A request that does not finish in time (a slow or stalled client).
    in_message_ = false;
    send(HttpResponse::error(408, "request timeout"), false);
    return;
  }
  close();  // idle keep-alive connection, or a response the client does not read
}

void HttpConnection::linger_close() {
  // Stop sending, then read and drop what the client still sends for a short while, so that
  // closing does not reset the connection before the client has read the response.
  std::error_code ignored;
  stream_.tcp().shutdown(asio::socket_base::shutdown_send, ignored);
  in_message_ = false;  // a request cut short is answered already: the timeout only closes
  arm_timer(linger_timeout);
  struct Drain {
    std::shared_ptr<HttpConnection> self;
    std::size_t dropped;
    void operator()(std::error_code ec, std::size_t n) {
      if (self->closed_)
        return;
      dropped += n;
      if (ec || dropped > linger_max_bytes) {
        self->close();
        return;
      }
      HttpConnection* c = self.get();
      c->stream_.async_read_some(asio::buffer(c->read_buffer_), Drain{std::move(self), dropped});
    }
  };
  stream_.async_read_some(asio::buffer(read_buffer_), Drain{shared_from_this(), 0});
}

void HttpConnection::close() {
  if (closed_)
    return;
  closed_ = true;
  ++timer_generation_;
  timer_.cancel();
  std::error_code ignored;
  stream_.tcp().shutdown(asio::socket_base::shutdown_both, ignored);
  stream_.tcp().close(ignored);
}

}  // namespace demo
