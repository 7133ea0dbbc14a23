#include "api.hpp"

#include "embedded_assets.hpp"
#include "url.hpp"

#include <notify/asio_transport.hpp>
#include <notify/notification.hpp>
#include <notify/sse_sink.hpp>
#include <notify/websocket_sink.hpp>

#include <asio/bind_executor.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

namespace demo {
namespace {

using nlohmann::json;

constexpr std::size_t default_list_limit = 50;
constexpr std::size_t max_list_limit = 500;
constexpr std::size_t max_user_bytes = 256;
constexpr std::size_t max_recipients = 1000;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse json_response(int status, const json& j) {
  return HttpResponse::json(status, dump(j));
}

// 202 {"id":"42"}, the answer to every publish, written without a JSON tree when the id is a
// plain decimal number (as every notify store's are).
HttpResponse published(const std::string& id) {
  const bool plain =
      !id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!plain)
    return json_response(202, json{{"id", id}});
  return HttpResponse::json(202, R"({"id":")" + id + R"("})");
}

// A user id: 1..256 bytes of valid UTF-8 without control characters.
constexpr std::string_view valid_user_text = "1 to 256 bytes of UTF-8 without control characters";
bool is_valid_user(std::string_view user) noexcept {
  if (user.empty() || user.size() > max_user_bytes)
    return false;
  for (std::size_t i = 0; i < user.size();) {
    const auto c = static_cast<unsigned char>(user[i]);
    if (c < 0x20 || c == 0x7f)
      return false;
    std::size_t len = 1;
    std::uint32_t cp = c;
    if (c >= 0x80) {
      if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1fu;
      } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0fu;
      } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07u;
      } else {
        return false;
      }
      if (i + len > user.size())
        return false;
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(user[i + k]);
        if ((cc & 0xc0u) != 0x80u)
          return false;
        cp = (cp << 6) | (cc & 0x3fu);
      }
      const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
      if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    }
    i += len;
  }
  return true;
}

struct Context {
  const HttpRequest& request;
  const std::vector<std::string>& segments;
  const QueryParams& query;
};

// --auth dev: the user is ?user=, else the X-User-Id header. An error response otherwise.
std::variant<std::string, HttpResponse> authenticate(const Context& ctx) {
  const std::string* user = ctx.query.find("user");
  if (user == nullptr || user->empty())
    user = ctx.request.header("x-user-id");
  if (user == nullptr || user->empty())
    return HttpResponse::error(401, "user: missing (pass ?user= or an X-User-Id header)");
  if (!is_valid_user(*user))
    return HttpResponse::error(400, "user: must be " + std::string(valid_user_text));
  return *user;
}

std::optional<std::size_t> parse_limit(const std::string& text) {
  std::size_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range && ptr == end)
    return max_list_limit;
  if (ec != std::errc() || ptr != end || value == 0)
    return std::nullopt;
  return value > max_list_limit ? max_list_limit : value;
}

json read_result_json(const notify::ReadResult& r) {
  return {{"ids", r.ids}, {"unreadCount", r.unread_count}};
}

// A store that failed with a message for the operator's log, not for clients.
HttpResponse store_failed(const std::exception& e, const char* what) {
  std::fprintf(stderr, "notify-demo: %s failed: %s\n", what, e.what());
  return HttpResponse::error(
      503, std::string(what) + " failed: the store is unavailable; try again later");
}

// The answer to a valid request the hub could not complete: a stopped hub, a full queue, or
// the store or bus failing (Redis away, SQLite's disk full) is for the client to retry later.
// `what`: "publish" or "read".
HttpResponse failed(const std::exception_ptr& error, const char* what) {
  try {
    std::rethrow_exception(error);
  } catch (const notify::ValidationError& e) {
    return HttpResponse::error(400, e.what());
  } catch (const std::system_error& e) {
    // SQLite's messages quote SQL and the file's path: for the operator's log only.
    if (std::string_view(e.code().category().name()) == "sqlite")
      return store_failed(e, what);
    return HttpResponse::error(503, std::string(what) + " failed: " + e.what());
  } catch (const std::exception& e) {
    return HttpResponse::error(503, std::string(what) + " failed: " + e.what());
  } catch (...) {
    return HttpResponse::error(503, std::string(what) + " failed");
  }
}

// The response to an async call of the hub, once it completes: `start(handler)` makes the
// call, `answer(result)` is the response to a result, failed(error, what) to an error (thrown
// by the call, or completed with).
template <typename Start, typename Answer>
PendingResponse when_complete(const char* what, Start start, Answer answer) {
  return PendingResponse{
      [what, start = std::move(start), answer](PendingResponse::Respond respond) mutable {
        try {
          start([what, answer, respond](std::exception_ptr error, auto result) {
            respond(error ? failed(error, what) : answer(result));
          });
        } catch (...) {
          respond(failed(std::current_exception(), what));
        }
      }};
}

// One notification to one user or to everyone, answered once the store has it. A store that
// may block (SQLite, Redis) is written by the hub's store thread, many requests per
// commit, while this connection's thread serves others; a MemoryStore in the call.
Api::Outcome publish_one(notify::NotificationHub& hub, notify::Notification draft) {
  if (!hub.store().may_block())
    return published(draft.broadcast ? hub.broadcast(std::move(draft))
                                     : hub.publish(std::move(draft)));
  return when_complete(
      "publish",
      [&hub, draft = std::move(draft)](auto done) mutable {
        hub.async_publish(std::move(draft), std::move(done));
      },
      [](const std::string& id) { return published(id); });
}

// One notification per user, in one store call (publish_one() says when it waits).
Api::Outcome publish_to(notify::NotificationHub& hub, std::vector<std::string> users,
                        notify::Notification draft) {
  const auto answer = [](const std::vector<std::string>& ids) {
    return json_response(202, json{{"ids", ids}});
  };
  if (!hub.store().may_block())
    return answer(hub.publish_to(users, std::move(draft)));
  return when_complete(
      "publish",
      [&hub, users = std::move(users), draft = std::move(draft)](auto done) mutable {
        hub.async_publish_to(std::move(users), std::move(draft), std::move(done));
      },
      answer);
}

// A read-state change of `user` (one notification, or all with no `id`), answered once the
// store has it (publish_one() says when it waits).
Api::Outcome mark_read(notify::NotificationHub& hub, std::string user,
                       std::optional<std::string> id) {
  const auto answer = [](const notify::ReadResult& result) {
    return json_response(200, read_result_json(result));
  };
  if (!hub.store().may_block()) {
    try {
      return answer(id ? hub.mark_read(user, *id) : hub.mark_all_read(user));
    } catch (...) {
      return failed(std::current_exception(), "read");
    }
  }
  return when_complete(
      "read",
      [&hub, user = std::move(user), id = std::move(id)](auto done) mutable {
        if (id)
          hub.async_mark_read(std::move(user), std::move(*id), std::move(done));
        else
          hub.async_mark_all_read(std::move(user), std::move(done));
      },
      answer);
}

// The user's notifications and unread count (publish_one() says when it waits).
Api::Outcome list_inbox(notify::NotificationHub& hub, std::string user, bool unread_only,
                        std::size_t limit) {
  const auto answer = [](const notify::Inbox& inbox) {
    return json_response(
        200, json{{"notifications", inbox.notifications}, {"unreadCount", inbox.unread_count}});
  };
  if (!hub.store().may_block()) {
    try {
      return answer({hub.list(user, unread_only, limit), hub.unread_count(user)});
    } catch (...) {
      return failed(std::current_exception(), "read");
    }
  }
  return when_complete(
      "read",
      [&hub, user = std::move(user), unread_only, limit](auto done) mutable {
        hub.async_list(std::move(user), unread_only, limit, std::move(done));
      },
      answer);
}

Api::Outcome list_notifications(notify::NotificationHub& hub, const Context& ctx,
                                std::string user) {
  bool unread_only = false;
  if (const std::string* unread = ctx.query.find("unread")) {
    if (*unread == "true" || *unread == "1") {
      unread_only = true;
    } else if (*unread == "false" || *unread == "0" || unread->empty()) {
      unread_only = false;
    } else {
      return HttpResponse::error(400, "unread: must be true or false");
    }
  }
  std::size_t limit = default_list_limit;
  if (const std::string* text = ctx.query.find("limit")) {
    const auto parsed = parse_limit(*text);
    if (!parsed)
      return HttpResponse::error(400, "limit: must be an integer from 1 to 500");
    limit = *parsed;
  }
  return list_inbox(hub, std::move(user), unread_only, limit);
}

Api::Outcome publish(notify::NotificationHub& hub, const HttpRequest& request) {
  // Read straight into the draft; only `data` and the members the draft has no field for
  // (userIds) become JSON trees.
  json others;
  notify::Notification draft;
  try {
    draft = notify::parse_notification(request.body, &others);
  } catch (const json::parse_error& e) {
    return HttpResponse::error(400, std::string("invalid JSON: ") + e.what());
  } catch (const notify::ValidationError& e) {
    if (e.field() == "notification")
      return HttpResponse::error(400, "body: must be a JSON object");
    return HttpResponse::error(400, e.what());
  } catch (const json::exception& e) {
    return HttpResponse::error(400, std::string("invalid notification: ") + e.what());
  }
  // The store assigns these; a client cannot choose them.
  draft.id.clear();
  draft.created_at.clear();
  draft.read_at.clear();
  // A publisher that retries sends the same key: the store answers with the first id.
  if (const std::string* key = request.header("idempotency-key")) {
    if (key->empty())
      return HttpResponse::error(400, "Idempotency-Key: empty");
    draft.idempotency_key = *key;
  }

  try {
    // One kind of recipient: a broadcast sent by mistake reaches every user.
    const auto ids = others.find("userIds");
    const bool has_ids = ids != others.end() && !ids->is_null();
    if (int{draft.broadcast} + int{!draft.user_id.empty()} + int{has_ids} > 1)
      return HttpResponse::error(400, "userId, userIds and broadcast: give only one");
    if (has_ids) {
      if (!ids->is_array())
        return HttpResponse::error(400, "userIds: must be an array of strings");
      if (ids->empty())
        return HttpResponse::error(400, "userIds: empty");
      if (ids->size() > max_recipients)
        return HttpResponse::error(400, "userIds: more than 1000 users");
      std::vector<std::string> users;
      users.reserve(ids->size());
      for (const auto& u : *ids) {
        if (!u.is_string() || !is_valid_user(u.get_ref<const std::string&>()))
          return HttpResponse::error(400, "userIds: each must be " + std::string(valid_user_text));
        users.push_back(u.get<std::string>());
      }
      return publish_to(hub, std::move(users), std::move(draft));
    }
    // A user no stream could sign in as (authenticate() refuses it) would never get it.
    if (!draft.broadcast && !draft.user_id.empty() && !is_valid_user(draft.user_id))
      return HttpResponse::error(400, "userId: must be " + std::string(valid_user_text));
    if (draft.broadcast || !draft.user_id.empty())
      return publish_one(hub, std::move(draft));
    return HttpResponse::error(400, "userId: missing (or userIds, or broadcast)");
  } catch (...) {
    return failed(std::current_exception(), "publish");
  }
}

// POST /api/sessions/end: what a host's logout does after its auth refuses the session:
// every connection of the user, on every instance, gets `session:end` and closes. The body is
// empty or {"reason":R} (default "logged_out").
Api::Outcome end_sessions(notify::NotificationHub& hub, const HttpRequest& request,
                          const std::string& user) {
  std::string reason = "logged_out";
  if (!request.body.empty()) {
    const auto body = json::parse(request.body, nullptr, false);
    if (body.is_discarded())
      return HttpResponse::error(400, "invalid JSON");
    if (!body.is_object())
      return HttpResponse::error(400, "body: must be a JSON object");
    if (auto it = body.find("reason"); it != body.end()) {
      if (!it->is_string() ||
          !notify::Sink::is_valid_session_end_reason(it->get_ref<const std::string&>()))
        return HttpResponse::error(400, "reason: must be 1 to 64 of a-z 0-9 _ - .");
      reason = it->get<std::string>();
    }
  }
  try {
    hub.end_sessions(user, reason);
  } catch (...) {
    return failed(std::current_exception(), "end of the sessions");
  }
  return json_response(200, json{{"userId", user}, {"reason", reason}});
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The cursor of a stream or WebSocket request: the Last-Event-ID header (a native
// EventSource reconnecting), else ?lastEventId= (a client opening a new connection).
std::string cursor_of(const Context& ctx) {
  if (const std::string* id = ctx.request.header("last-event-id"); id && !id->empty())
    return *id;
  if (const std::string* id = ctx.query.find("lastEventId"))
    return *id;
  return {};
}

// Writes `response` on a transport nothing was written to, then closes it. `sink` (never
// attached, so never started) is only kept alive until then.
template <typename Stream>
void refuse_stream(const std::shared_ptr<notify::AsioTransport<Stream>>& transport,
                   std::shared_ptr<notify::Sink> sink, const HttpResponse& response) {
  auto bytes = std::make_shared<std::string>(serialize(response, false));
  asio::post(transport->executor(), [transport, sink = std::move(sink), bytes]() mutable {
    asio::async_write(
        transport->stream(), asio::buffer(*bytes),
        asio::bind_executor(transport->executor(),
                            [transport, sink = std::move(sink), bytes](
                                std::error_code, std::size_t) { transport->close(); }));
  });
}

// Hands `stream` (a TCP socket or a TLS stream) to the sink `make_sink(transport)` makes and
// attaches it to the hub; when the hub refuses the connection or anything throws, answers on
// the stream with a JSON error instead. The stream's io_context is run by one thread, so the
// transport has no strand.
template <typename Stream, typename MakeSink>
void attach_or_refuse(notify::NotificationHub& hub, Stream stream, std::string user,
                      const std::string& cursor, const char* what, MakeSink make_sink) noexcept {
  std::shared_ptr<notify::AsioTransport<Stream>> transport;
  std::shared_ptr<notify::Sink> sink;
  try {
    transport = notify::make_asio_transport(std::move(stream), notify::Threading::single);
    sink = make_sink(transport);
    std::error_code ec;
    hub.attach(std::move(user), sink, cursor, ec);
    if (ec)
      sink->refuse(ec);  // 429 or 503 with a JSON error, in place of the stream's head
  } catch (const std::exception& e) {
    std::fprintf(stderr, "notify-demo: cannot open %s: %s\n", what, e.what());
    try {
      if (transport)
        refuse_stream(transport, std::move(sink), HttpResponse::error(500, e.what()));
    } catch (...) {
      if (transport)
        transport->close();
    }
  }
}

}  // namespace

Api::Api(notify::NotificationHub& hub, ApiOptions options)
    : hub_(hub), options_(std::move(options)) {
  if (!options_.allowed_origins.empty()) {
    std::vector<std::string> allowed;
    for (const auto& origin : options_.allowed_origins)
      allowed.push_back(lower_ascii(origin));
    // No Origin header: not a browser (a browser always sends one with a WebSocket
    // handshake), so there is no cross-site page to protect against.
    handshake_options_.origin_allowed = [allowed = std::move(allowed)](std::string_view origin) {
      if (origin.empty())
        return true;
      return std::find(allowed.begin(), allowed.end(), lower_ascii(origin)) != allowed.end();
    };
  }
}

Api::Outcome Api::handle(const HttpRequest& request) noexcept {
  try {
    return route(request);
  } catch (const std::exception& e) {
    try {
      return HttpResponse::error(500, std::string("internal error: ") + e.what());
    } catch (...) {
    }
  } catch (...) {
  }
  HttpResponse fallback;
  fallback.status = 500;
  return fallback;
}

Api::Outcome Api::route(const HttpRequest& request) {
  const auto segments = split_path(request.path);
  if (!segments)
    return HttpResponse::error(400, "invalid path");
  const auto query = QueryParams::parse(request.query);
  if (!query)
    return HttpResponse::error(400, "invalid percent-encoding in the query");
  const Context ctx{request, *segments, *query};
  const std::string& method = request.method;
  const auto& s = *segments;
  // HEAD is GET without the body (HttpConnection leaves it out), except for the stream and
  // the WebSocket, which are nothing but their body.
  const bool get = method == "GET" || method == "HEAD";
  const bool post = method == "POST";

  const bool api = s.size() >= 2 && s[0] == "api" && s[1] == "notifications";
  if (api && s.size() == 2) {
    if (!get && !post)
      return HttpResponse::method_not_allowed("GET, HEAD, POST");
    if (post)
      return publish(hub_, request);
    auto user = authenticate(ctx);
    if (auto* error = std::get_if<HttpResponse>(&user))
      return std::move(*error);
    return list_notifications(hub_, ctx, std::move(std::get<std::string>(user)));
  }
  if (api && s.size() == 3 && s[2] == "stream") {
    if (method != "GET")
      return HttpResponse::method_not_allowed("GET");
    auto user = authenticate(ctx);
    if (auto* error = std::get_if<HttpResponse>(&user))
      return std::move(*error);
    return StreamRequest{std::get<std::string>(std::move(user)), cursor_of(ctx)};
  }
  if (api && s.size() == 3 && s[2] == "ws") {
    if (method != "GET")
      return HttpResponse::method_not_allowed("GET");
    auto user = authenticate(ctx);
    if (auto* error = std::get_if<HttpResponse>(&user))
      return std::move(*error);
    return websocket(request, std::get<std::string>(std::move(user)), cursor_of(ctx));
  }
  if (api && s.size() == 3 && s[2] == "read-all") {
    if (!post)
      return HttpResponse::method_not_allowed("POST");
    auto user = authenticate(ctx);
    if (auto* error = std::get_if<HttpResponse>(&user))
      return std::move(*error);
    return mark_read(hub_, std::get<std::string>(std::move(user)), std::nullopt);
  }
  if (api && s.size() == 4 && s[3] == "read") {
    if (!post)
      return HttpResponse::method_not_allowed("POST");
    auto user = authenticate(ctx);
    if (auto* error = std::get_if<HttpResponse>(&user))
      return std::move(*error);
    return mark_read(hub_, std::get<std::string>(std::move(user)), s[2]);
  }
  if (s.size() == 3 && s[0] == "api" && s[1] == "sessions" && s[2] == "end") {
    if (!post)
      return HttpResponse::method_not_allowed("POST");
    auto user = authenticate(ctx);
    if (auto* error = std::get_if<HttpResponse>(&user))
      return std::move(*error);
    return end_sessions(hub_, request, std::get<std::string>(user));
  }
  if (s.size() == 1 && s[0] == "metrics") {
    if (!get)
      return HttpResponse::method_not_allowed("GET, HEAD");
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = hub_.metrics_text();
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  if (s.size() == 1 && s[0] == "healthz") {
    if (!get)
      return HttpResponse::method_not_allowed("GET, HEAD");
    return HttpResponse::json(200, R"({"status":"ok"})");
  }

  // The demo page and its assets.
  std::string path;
  for (const auto& segment : s) {
    if (segment.find('/') != std::string::npos)
      return HttpResponse::error(404, "not found");
    path += '/';
    path += segment;
  }
  const Asset* asset = find_asset(path);
  if (asset == nullptr)
    return HttpResponse::error(404, "not found");
  if (!get)
    return HttpResponse::method_not_allowed("GET, HEAD");
  HttpResponse r;
  r.content_type = asset->content_type;
  r.body = std::string(asset->body);
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

Api::Outcome Api::websocket(const HttpRequest& request, std::string user,
                            std::string cursor) const {
  notify::ws::HandshakeRequest handshake{request.method, {}, request.http_version};
  handshake.headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers)
    handshake.headers.emplace_back(name, value);
  auto result = notify::ws::accept_handshake(handshake, handshake_options_);
  if (result.status != 101)
    return RawResponse{std::move(result.response)};
  return WebSocketRequest{std::move(user), std::move(cursor), std::move(result)};
}

void Api::open_stream(ClientStream stream, StreamRequest request) noexcept {
  stream.take([&](auto s) {
    attach_or_refuse(hub_, std::move(s), std::move(request.user), request.cursor, "a stream",
                     [this](const auto& transport) {
                       return with_session_deadline(notify::SseSink::create(transport));
                     });
  });
}

void Api::open_websocket(ClientStream stream, WebSocketRequest request) noexcept {
  // The sink writes the handshake's 101 response as its first bytes, once attached; when the
  // hub refuses the connection nothing was written yet, so the answer is a plain HTTP error.
  stream.take([&](auto s) {
    attach_or_refuse(
        hub_, std::move(s), std::move(request.user), request.cursor, "a WebSocket",
        [&](const auto& transport) {
          return with_session_deadline(notify::WebSocketSink::create(transport, request.handshake));
        });
  });
}

std::shared_ptr<notify::Sink> Api::with_session_deadline(std::shared_ptr<notify::Sink> sink) const {
  if (options_.session.count() > 0)
    sink->end_session_at(std::chrono::steady_clock::now() + options_.session);
  return sink;
}

}  // namespace demo
