// NotificationHub: the registry of local connections by user, and everything between
// "this notification exists" and "its bytes reached every connection of that user".
//
// The host owns the hub and its io_context. The hub runs its timers (one heartbeat sweep
// and one check of session deadlines for all connections, the batching windows) on the
// executor it is given.
//
// Thread safety: every member function is safe to call from any thread, concurrently.
// publish() never blocks on a client: it appends to the store, hands the event to the bus
// and queues it on each target connection. It does wait for the store (an SQLite commit, a
// Redis round trip); async_publish() does not, and has the hub's store thread (started on
// its first use with a store that may block, joined by stop()) write many at once. With such
// a store the hub's own reads (a connection's first `init`, gap repairs, resyncs) run on
// that thread too, so that no io thread waits for the store unless the host calls a
// synchronous member (publish(), mark_read(), list(), ...).
#pragma once

#include <notify/bus.hpp>
#include <notify/error.hpp>
#include <notify/export.hpp>
#include <notify/metrics.hpp>
#include <notify/notification.hpp>
#include <notify/sink.hpp>
#include <notify/store.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace notify {

struct HubOptions {
  // How often the heartbeat sweep runs: an SSE `heartbeat` event to a stream idle this long;
  // a WebSocket ping and a `heartbeat` message to every socket (its pong proves the client
  // lives). Proxies cut idle streams (nginx's proxy_read_timeout is 60 s), so 30 s. At
  // least 1 s.
  std::chrono::milliseconds heartbeat_interval{30000};
  // How often the deadlines of Sink::end_session_at() are checked: a session ends within this
  // after its deadline. One pass over the connections (an atomic load each) per interval, on
  // one timer: no timer per connection. At least 10 ms.
  std::chrono::milliseconds session_check_interval{1000};
  // Per-user batching window: notifications for one user within it go out as one
  // `notifications:batch` (one as a plain `notification`). 0 disables batching.
  std::chrono::milliseconds batch_window{200};
  std::size_t max_connections = 100000;       // total on this instance
  std::size_t max_connections_per_user = 32;  // tabs and devices of one user
  QueueLimits queue;                          // per-connection outbound queue
  std::size_t snapshot_limit = 50;            // notifications in an init/reset snapshot
  std::size_t max_replay = 1000;              // more missed than this: reset instead
  // What a connection is first sent bypasses the queue's limits (it has had no chance to read
  // yet), so it has a bound of its own, in bytes of notification JSON: a replay of what a
  // connection missed past it becomes a reset, and a snapshot lists only the newest of its
  // unread that fit (its unreadCount still counts them all). At least 64 KiB.
  std::size_t max_prime_bytes = 2 * 1024 * 1024;
  ValidationLimits validation;
  // With a bus whose subscriptions take effect later (Bus::subscriptions_confirmed_later,
  // RedisBus), a user's first connections on this instance wait up to this long for the
  // subscription before their `init`: primed once it is active, one store read covers
  // everything, where priming at once needs a second read (a repair) for what was published
  // before the subscription took effect. Past the wait they are primed anyway (and repaired
  // when the confirmation comes). 0 primes at once.
  std::chrono::milliseconds subscription_wait{2000};
  // async_publish*(), async_mark*() and async_list() calls waiting for the store thread; past
  // it they complete with errc::too_many_pending_publishes instead of growing the queue while
  // the store lags.
  std::size_t max_pending_publishes = 10000;
};

// A message a WebSocket client sent, as handed to a host's handler.
struct ClientMessage {
  std::string user;                  // who sent it (the connection's user)
  std::string type;                  // its "type"
  nlohmann::json body;               // the whole message object
  std::shared_ptr<Sink> connection;  // where it came from: NotificationHub::reply() answers it
};
using MessageHandler = std::function<void(const ClientMessage&)>;

// What NotificationHub::async_list() reads: the notifications list() returns and the user's
// unread count, read one after the other.
struct Inbox {
  std::vector<Notification> notifications;
  std::uint64_t unread_count = 0;
};

class NOTIFY_EXPORT NotificationHub {
 public:
  // An empty store means MemoryStore; an empty bus means InProcessBus.
  // Throws std::invalid_argument for invalid options.
  explicit NotificationHub(asio::any_io_executor executor, HubOptions options = {},
                           std::shared_ptr<Store> store = {}, std::shared_ptr<Bus> bus = {});
  ~NotificationHub();
  NotificationHub(const NotificationHub&) = delete;
  NotificationHub& operator=(const NotificationHub&) = delete;

  // --- publishing -----------------------------------------------------------------
  // Publishes `draft` to draft.user_id (or to everyone when draft.broadcast) and returns
  // the id assigned. Throws ValidationError for an invalid draft, std::system_error
  // (errc::hub_stopped, bus errors) when it cannot be published.
  // With an idempotency key (Notification::idempotency_key) the store already holds for the
  // recipient, nothing is stored or sent and the first publish's id is returned; if the
  // draft's content differs from the first's, it throws ValidationError on "idempotencyKey"
  // instead (the key was used for another notification). Throws std::invalid_argument for a
  // key when the store does not keep keys (Store::keeps_idempotency_keys()).
  // With a store that may block, a publish() that finds the store thread writing or a publish
  // queued for it (async, or another thread's publish()) joins that queue and waits for its
  // batch: concurrent callers share one store call, and one whose store does not answer
  // fails after the call in progress and its own batch, not after every caller before it.
  // A thread's earlier async_publish() is stored first. Alone, it writes in the call.
  std::string publish(Notification draft);
  // One notification per user (each with its own id), in the order given. A key counts per
  // user; when one user's repeat differs, the others are published and the call throws.
  std::vector<std::string> publish_to(const std::vector<std::string>& users, Notification draft);
  std::string broadcast(Notification draft);

  // publish() — or broadcast(), for a draft with `broadcast` set — without waiting for the
  // store. The draft is validated at once: an invalid one throws ValidationError here and
  // nothing is queued (as does std::system_error when the store thread cannot start). With a
  // store that may block (Store::may_block(): SqliteStore, RedisStore) the draft is queued for the
  // hub's store thread, which stores everything queued meanwhile with one Store::append_all()
  // (one SQLite commit, one Redis pipeline for up to 256 publishes) and then hands them to the bus
  // in id order. A MemoryStore is written on the calling thread.
  //
  // `token` is any Asio completion token (a callback, asio::use_future,
  // asio::use_awaitable, ...) for void(std::exception_ptr error, std::string id), completed on
  // its associated executor (default: the hub's) and never inside this call. `error` is null
  // and `id` the assigned id, or `error` holds what publish() would have thrown:
  // std::system_error with errc::hub_stopped, errc::too_many_pending_publishes or a bus error
  // (the notification is then stored all the same, as with publish()), the ValidationError
  // of a reused idempotency key (this call only), or the store's exception (SqliteStore then
  // stored none of the batch). The publishes one thread queues are stored in the order of
  // its calls.
  template <typename CompletionToken>
  auto async_publish(Notification draft, CompletionToken&& token);

  // publish_to() without waiting for the store, as async_publish(): one notification per
  // user, stored in one append_all() with whatever else is queued. `token` completes with
  // void(std::exception_ptr error, std::vector<std::string> ids), the ids in the order of
  // `users`; on error none of them counts as published (with a bus error they may be stored).
  template <typename CompletionToken>
  auto async_publish_to(std::vector<std::string> users, Notification draft,
                        CompletionToken&& token);

  // --- connections ----------------------------------------------------------------
  // Attaches a connection of `user`. The sink first gets `init` (the user's unread
  // notifications at the cursor, newest first, and the unread count); when `resume_from`
  // is a known cursor, every notification after it follows in order, then live events,
  // with no gap and no duplicate. An unknown or too old cursor gets `notifications:reset`
  // with a fresh snapshot instead of `init`.
  // Throws std::system_error: errc::too_many_connections, too_many_user_connections,
  // hub_stopped, already_attached, connection_closed (the sink was closed before: a host
  // that refused it itself). Throws std::invalid_argument for an empty user. A refused
  // sink is left as it was: answer the client with sink->refuse(ec).
  // The store is read later when it may block (on the store thread, after the store call in
  // progress there, not behind its queue of publishes) or when the connection
  // waits for its user's bus subscription (HubOptions::subscription_wait; then on the hub's
  // executor, or the store thread); live events wait for that prime, so none is missed.
  // Otherwise (a MemoryStore) it is read in this call, and what the store throws is thrown
  // here. A later read that fails closes the connection with errc::store_unavailable,
  // which a sink not yet primed answers in its protocol (Sink::farewell_before_start: an SSE
  // stream that ends, so that EventSource reconnects; WebSocket close code 1013).
  void attach(std::string user, std::shared_ptr<Sink> sink, std::string_view resume_from = {});
  void attach(std::string user, std::shared_ptr<Sink> sink, std::string_view resume_from,
              std::error_code& ec);

  std::size_t connection_count() const;
  std::size_t connection_count(std::string_view user) const;

  // --- read state -----------------------------------------------------------------
  // Updates the store; every connection of the user gets `notification:read` with the
  // changed ids and the authoritative unread count. With a store that may block, a call that
  // finds the store thread busy or a call queued for it waits its turn in that queue, as
  // publish() does, and is made in one store call with the changes queued beside it
  // (Store::mark_many).
  ReadResult mark_read(std::string_view user, std::string_view id);
  ReadResult mark_all_read(std::string_view user);

  // mark_read() and mark_all_read() without waiting for the store, as async_publish(): with a
  // store that may block the change is queued for the store thread, in order with the
  // publishes queued before and after it; changes queued one after another are made in one
  // store call (Store::mark_many), which fails or succeeds for all of them. `token` completes
  // with void(std::exception_ptr error, ReadResult result). Throws std::invalid_argument for
  // an empty user. A WebSocket client's `notification:read` and `notifications:read_all` go
  // the same way.
  template <typename CompletionToken>
  auto async_mark_read(std::string user, std::string id, CompletionToken&& token);
  template <typename CompletionToken>
  auto async_mark_all_read(std::string user, CompletionToken&& token);

  // Read the store on the calling thread; also after stop() (the store outlives the hub's
  // connections). Throw std::invalid_argument for an empty user.
  std::vector<Notification> list(std::string_view user, bool unread_only, std::size_t limit) const;
  std::uint64_t unread_count(std::string_view user) const;

  // list() and unread_count() without waiting for the store, as async_publish(): with a store
  // that may block both are read on the store thread, in turn with the queued calls, and
  // count towards HubOptions::max_pending_publishes. `token` completes with
  // void(std::exception_ptr error, Inbox inbox). Throws std::invalid_argument for an empty
  // user.
  template <typename CompletionToken>
  auto async_list(std::string user, bool unread_only, std::size_t limit, CompletionToken&& token);

  // --- two-way messages (WebSocket) -------------------------------------------------
  // The hub handles {"type":"notification:read","id":ID} and {"type":"notifications:read_all"}
  // itself. Other types go to the handler registered for them; an unknown type or invalid
  // JSON is answered with {"type":"error","data":{"message":...}} (with the message's "type"
  // and "ref" when it had them, see reply_error) and the connection stays.
  // Handlers run on the connection's executor; an exception is answered with an error and
  // reported. Throws std::invalid_argument for an empty type or a built-in one.
  void on_message(std::string type, MessageHandler handler);

  // Sends an ephemeral event (not stored, no id, never replayed) to every connection of
  // `user` on every instance, e.g. a typing indicator. `data` is the event's JSON payload.
  // Throws std::invalid_argument for an empty user, a type of the hub's own
  // (event_type::is_reserved), or a type or data that is not UTF-8; std::system_error for a
  // stopped hub or a bus error.
  void send_to(std::string_view user, std::string type, const nlohmann::json& data);

  // Sends {"type":T,"data":D} to one connection only. Throws as send_to() for the type.
  static void reply(const std::shared_ptr<Sink>& connection, std::string type,
                    const nlohmann::json& data);
  // Answers a message a handler refuses, as the hub answers those it refuses:
  // {"type":"error","data":{"message":why,"type":<its type>,"ref":<its ref>}}. A client sets
  // "ref" (a string of at most 128 bytes, or an integer) to tell which of its messages an
  // error answers; it is left out when the message had none.
  static void reply_error(const ClientMessage& message, std::string_view why);

  // --- sessions -------------------------------------------------------------------
  // Ends every connection of `user` on every instance (through the bus), as
  // Sink::end_session(reason) ends one: the client gets `session:end` with the reason
  // (WebSocket: then close code 4401) and knows not to reconnect before it authenticates
  // again. For a logout, a revoked token, a disabled account: call it after your auth
  // refuses the old credentials, or a client may reconnect with them in between. A
  // connection attached later is not affected. This instance's connections end in the call,
  // even when the bus then fails; another instance's end when the event reaches it. The bus
  // sends it to every instance (Envelope::every_instance), so it also ends a connection
  // whose user's subscription is not active yet there. A bus that keeps session ends
  // (RedisBus, for RedisBusOptions::session_end_retention) delivers it again to an instance
  // whose subscription was away when it was sent, which then ends the connections it
  // attached before it. Throws
  // std::invalid_argument for an empty user or an invalid reason
  // (Sink::is_valid_session_end_reason), std::system_error for a stopped hub or a bus error
  // (the local connections have ended).
  void end_sessions(std::string_view user, std::string_view reason);

  // --- operations -----------------------------------------------------------------
  // Closes every connection (after its write in flight), cancels the timers and stops the
  // bus. Later publishes and attaches fail with errc::hub_stopped. Idempotent.
  void stop();

  HubMetrics metrics() const;
  // The metrics in Prometheus text exposition format.
  std::string metrics_text() const;

  // Called with every exception caught from a part (a sink, the bus, a timer), counted in
  // metrics as handler_errors, and when connections stop waiting for a bus subscription that
  // did not come (counted as subscription_waits_expired). Default: written to stderr.
  void set_error_handler(std::function<void(std::string_view what)> handler);

  const HubOptions& options() const noexcept;
  Store& store() const noexcept;
  Bus& bus() const noexcept;

  // The executor given at construction.
  asio::any_io_executor get_executor() const noexcept;

  class Impl;

 private:
  // How start_publish() reports: `count` ids (for the callee to move from) when `error` is
  // null. Called exactly once, from any thread, possibly before start_publish() returns.
  using PublishCompletion =
      std::function<void(std::exception_ptr error, std::string* ids, std::size_t count)>;
  // async_publish() and async_publish_to() without the completion token: validate (throw
  // ValidationError), then publish or queue.
  void start_publish(Notification draft, PublishCompletion done);
  void start_publish_to(const std::vector<std::string>& users, const Notification& draft,
                        PublishCompletion done);
  // How start_mark() reports: the result when `error` is null. Called exactly once, from any
  // thread, possibly before start_mark() returns.
  using MarkCompletion = std::function<void(std::exception_ptr error, ReadResult result)>;
  // async_mark_read() (with `id`) and async_mark_all_read() without the completion token.
  void start_mark(std::string user, std::optional<std::string> id, MarkCompletion done);
  // async_list() without the completion token; `done` is called as a MarkCompletion is.
  using ListCompletion = std::function<void(std::exception_ptr error, Inbox inbox)>;
  void start_list(std::string user, bool unread_only, std::size_t limit, ListCompletion done);
  // `handler`, for void(std::exception_ptr, Result), as a function of the same arguments that
  // posts it with them to its associated executor (default: the hub's), keeping that
  // executor's work meanwhile.
  template <typename Result, typename Handler>
  auto post_to(Handler handler) const;
  // post_to() for the ids start_publish() reports.
  template <typename Result, typename Handler>
  PublishCompletion completion_for(Handler handler) const;

  std::shared_ptr<Impl> impl_;
};

template <typename Result, typename Handler>
auto NotificationHub::post_to(Handler handler) const {
  auto work = asio::make_work_guard(asio::get_associated_executor(handler, get_executor()));
  using Pending = std::pair<Handler, decltype(work)>;
  // std::function wants a copyable callable; a handler may be move-only.
  auto pending = std::make_shared<Pending>(std::move(handler), std::move(work));
  return [pending](std::exception_ptr error, Result result) {
    auto executor = pending->second.get_executor();
    // Moved, not copied: the calling thread keeps no reference to the exception.
    asio::post(executor, [pending, error = std::move(error), result = std::move(result)]() mutable {
      auto h = std::move(pending->first);
      pending->second.reset();
      std::move(h)(error, std::move(result));
    });
  };
}

template <typename Result, typename Handler>
NotificationHub::PublishCompletion NotificationHub::completion_for(Handler handler) const {
  return [post = post_to<Result>(std::move(handler))](std::exception_ptr error, std::string* ids,
                                                      std::size_t count) {
    Result result;
    if constexpr (std::is_same_v<Result, std::string>) {
      if (count == 1)
        result = std::move(ids[0]);
    } else {
      result.assign(std::make_move_iterator(ids), std::make_move_iterator(ids + count));
    }
    post(std::move(error), std::move(result));
  };
}

template <typename CompletionToken>
auto NotificationHub::async_publish(Notification draft, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::exception_ptr, std::string)>(
      [this](auto handler, Notification queued) {
        start_publish(std::move(queued), completion_for<std::string>(std::move(handler)));
      },
      token, std::move(draft));
}

template <typename CompletionToken>
auto NotificationHub::async_publish_to(std::vector<std::string> users, Notification draft,
                                       CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::exception_ptr, std::vector<std::string>)>(
      [this](auto handler, std::vector<std::string> to, Notification queued) {
        start_publish_to(to, queued, completion_for<std::vector<std::string>>(std::move(handler)));
      },
      token, std::move(users), std::move(draft));
}

template <typename CompletionToken>
auto NotificationHub::async_mark_read(std::string user, std::string id, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::exception_ptr, ReadResult)>(
      [this](auto handler, std::string u, std::string i) {
        start_mark(std::move(u), std::move(i), post_to<ReadResult>(std::move(handler)));
      },
      token, std::move(user), std::move(id));
}

template <typename CompletionToken>
auto NotificationHub::async_mark_all_read(std::string user, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::exception_ptr, ReadResult)>(
      [this](auto handler, std::string u) {
        start_mark(std::move(u), std::nullopt, post_to<ReadResult>(std::move(handler)));
      },
      token, std::move(user));
}

template <typename CompletionToken>
auto NotificationHub::async_list(std::string user, bool unread_only, std::size_t limit,
                                 CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(std::exception_ptr, Inbox)>(
      [this](auto handler, std::string u, bool unread, std::size_t n) {
        start_list(std::move(u), unread, n, post_to<Inbox>(std::move(handler)));
      },
      token, std::move(user), unread_only, limit);
}

}  // namespace notify
