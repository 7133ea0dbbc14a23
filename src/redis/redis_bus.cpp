#include <notify/error.hpp>
#include <notify/redis_bus.hpp>
#include <notify/store.hpp>

#include "bus_message.hpp"
#include "connection.hpp"
#include "publisher.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace notify {

using namespace redis_detail;

// The message on the broadcast channel that asks every instance to repair from the store
// (see Publisher): not an envelope, so decode_bus_message() rejects it.
constexpr std::string_view repair_message = "{\"r\":true}\n";

// An every_instance message: appended to the log of session ends, then published, in one
// step. KEYS[1] the log; ARGV: retention in seconds, channel, message, PUBLISH or SPUBLISH,
// the sender's wall clock in milliseconds when publish() was called (the entry's "t": what a
// replay compares connections with; Redis may run the script later, behind other commands).
// The log is trimmed and expires by Redis's clock, which also stamps its entries' ids.
constexpr std::string_view log_and_publish_script = R"lua(
local now = redis.call('TIME')
local oldest = (tonumber(now[1]) - tonumber(ARGV[1])) * 1000
redis.call('XADD', KEYS[1], 'MINID', '~', string.format('%d', oldest), '*', 'm', ARGV[3],
           't', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call(ARGV[4], ARGV[2], ARGV[3])
)lua";

// How far before its last sign of life a reconnected bus reads the log: the entries' ids are
// Redis's clock, the sign of life is this host's. Reading more is harmless (a replayed end
// spares connections attached after it), so this only needs to exceed the clocks' skew.
constexpr std::chrono::seconds replay_margin{30};
constexpr std::size_t replay_page = 256;

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The milliseconds of a stream id "MS-N" (or of "MS" alone); nullopt when it is not one.
std::optional<std::int64_t> stream_id_ms(std::string_view id) {
  const auto dash = id.find('-');
  const auto digits = id.substr(0, dash);
  if (digits.empty() || digits.size() > 18)
    return std::nullopt;
  std::int64_t ms = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9')
      return std::nullopt;
    ms = ms * 10 + (c - '0');
  }
  return ms;
}

// Names one bus among those of a fleet, past restarts: 64 random bits, in hex.
std::string random_origin() {
  std::random_device device;
  const auto bits = (std::uint64_t{device()} << 32) ^ device();
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(bits));
  return text;
}

// --- RedisBus::Impl -------------------------------------------------------------------

class RedisBus::Impl : public std::enable_shared_from_this<RedisBus::Impl> {
 public:
  explicit Impl(RedisBusOptions options)
      : options_(std::move(options)),
        broadcast_channel_(options_.redis.prefix + "broadcast"),
        session_end_log_(options_.redis.prefix + "session-ends"),
        own_io_(options_.executor ? nullptr : std::make_unique<asio::io_context>()),
        executor_(own_io_ ? asio::any_io_executor(own_io_->get_executor())
                          : asio::any_io_executor(asio::make_strand(options_.executor))),
        resolver_(executor_),
        reconnect_timer_(executor_),
        connect_timer_(executor_),
        ping_timer_(executor_),
        resend_timer_(executor_),
        backoff_(options_.redis.backoff_initial, options_.redis.backoff_max),
        resend_backoff_(options_.redis.backoff_initial, options_.redis.backoff_max),
        publisher_(executor_, options_.redis, publish_command(broadcast_channel_, repair_message),
                   options_.publish_backlog_bytes, options_.gather_publishes,
                   {[this](const std::string& what) { report(what); },
                    [this] { first_attempt_finished(); }, [this] { start_replay(); }}) {
    check_address(options_.redis, "RedisBus");
    if (options_.session_end_retention.count() < 0)
      throw std::invalid_argument("RedisBus: session_end_retention is negative");
    if (own_io_)
      work_.emplace(own_io_->get_executor());
  }

  ~Impl() { stop(); }

  // --- the API (any thread) ---------------------------------------------------------

  void start(BusListener& listener) {
    {
      std::lock_guard lock(lifecycle_mutex_);
      if (started_)
        throw std::logic_error("RedisBus: started twice");
      started_ = true;
      listener_ = &listener;
      state_.store(BusState::reconnecting, std::memory_order_release);
      if (own_io_)
        thread_ = std::thread([this] { own_io_->run(); });
    }
    asio::post(executor_, [this, keep = keep(), since = std::chrono::system_clock::now()] {
      // Connections attached before the first subscription may have missed an end too.
      replay_from_ = since;
      connect();
      publisher_.start(own_io_ ? std::weak_ptr<void>() : weak_from_this());
    });
    // On a host's context, start() may be running on the thread that runs it, or before
    // anything runs it: waiting there could only time out.
    if (!own_io_)
      return;
    std::unique_lock lock(first_mutex_);
    first_cv_.wait_for(lock, options_.redis.connect_timeout + std::chrono::milliseconds(500),
                       [this] { return first_attempts_left_ == 0; });
  }

  void stop() noexcept {
    std::thread thread;
    {
      std::lock_guard lock(lifecycle_mutex_);
      if (stopped_)
        return;
      stopped_ = true;
      stopping_.store(true, std::memory_order_release);
      thread = std::move(thread_);
    }
    // On a host's context the close below holds the bus. Null there only from ~Impl, which
    // RedisBus's destructor never leaves to stop.
    const auto self = own_io_ ? nullptr : weak_from_this().lock();
    try {
      if (own_io_ || self)
        asio::post(executor_, [this, keep = self] {
          drop_connection();
          publisher_.stop();
          reconnect_timer_.cancel();
          connect_timer_.cancel();
          ping_timer_.cancel();
          resend_timer_.cancel();
          resolver_.cancel();
          if (work_)
            work_->reset();
        });
    } catch (...) {
      // Out of memory: on a host's context the sockets close with it; below, with the thread.
    }
    if (own_io_) {
      if (thread.joinable() && thread.get_id() == std::this_thread::get_id())
        thread.detach();  // stop() from a listener callback: the thread ends after it
      else if (thread.joinable())
        thread.join();
      own_io_->stop();
    } else {
      // A callback running on another thread of the host's context finishes before stop()
      // returns, and none starts after (stopping_). From inside a callback, the recursive
      // mutex is this thread's already.
      std::lock_guard wait(host_mutex_);
    }
    state_.store(BusState::stopped, std::memory_order_release);
  }

  void publish(const Envelope& envelope, std::error_code& ec) {
    const bool repairable = envelope.event && envelope.event->seq() != 0;
    if (state_.load(std::memory_order_acquire) != BusState::connected) {
      publisher_.refused(repairable);
      ec = make_error_code(errc::bus_unavailable);
      return;
    }
    if (envelope.every_instance && !envelope.broadcast) {
      // A session end: nothing repairs it, so it is sent again should the connection fail
      // before Redis answered, in a form that says when it was first sent (a receiver ends
      // only the connections attached before then: it may have had it already, and a new
      // login may have come since).
      const auto sent_at = envelope.replayed_sent_at.value_or(std::chrono::system_clock::now());
      auto again = envelope;
      again.replayed_sent_at = sent_at;
      publisher_.publish(session_end_command(envelope, sent_at), repairable, ec,
                         session_end_command(again, sent_at));
      return;
    }
    publisher_.publish(
        publish_command(envelope.broadcast ? broadcast_channel_ : user_channel(envelope.user),
                        encode_bus_message(envelope)),
        repairable, ec);
  }

  void change(std::string_view user, int delta) {
    if (user.empty())
      throw std::invalid_argument("RedisBus: the user is empty");
    asio::post(executor_, [this, keep = keep(), user = std::string(user), delta] {
      apply_change(user, delta);
    });
  }

  // Connected when both connections are: the publishing one may lag the subscriber by a
  // reconnection attempt.
  BusState state() const noexcept {
    const auto subscriber = state_.load(std::memory_order_acquire);
    if (subscriber == BusState::connected && !publisher_.ready())
      return BusState::reconnecting;
    return subscriber;
  }

  std::string user_channel(std::string_view user) const {
    return options_.redis.prefix + "u:" + redis_escape(user);
  }

  const RedisBusOptions& options() const noexcept { return options_; }
  const std::string& broadcast_channel() const noexcept { return broadcast_channel_; }

 private:
  std::string publish_command(std::string_view channel, std::string_view message) const {
    std::string out;
    append_command(out, {options_.sharded ? "SPUBLISH" : "PUBLISH", channel, message});
    return out;
  }

  // On the broadcast channel, and appended to the log when one is kept.
  std::string session_end_command(const Envelope& envelope,
                                  std::chrono::system_clock::time_point sent_at) const {
    if (options_.session_end_retention.count() <= 0)
      return publish_command(broadcast_channel_, encode_bus_message(envelope, origin_));
    std::string out;
    append_command(
        out, {"EVAL", log_and_publish_script, "1", session_end_log_,
              std::to_string(options_.session_end_retention.count()), broadcast_channel_,
              encode_bus_message(envelope, origin_), options_.sharded ? "SPUBLISH" : "PUBLISH",
              std::to_string(unix_ms(sent_at))});
    return out;
  }

  // On a host's context, what a handler holds so that the bus outlives it; on its own
  // thread, nothing (stop() joins the thread, and the context is destroyed with the bus).
  std::shared_ptr<Impl> keep() { return own_io_ ? nullptr : shared_from_this(); }

  // A command sent on the subscriber connection, awaiting its replies. Redis answers
  // commands in the order they were sent (the messages it pushes aside), and an error reply
  // does not say which command it refuses: the connection keeps a queue of these to know.
  struct Awaited {
    enum class Kind { handshake, subscribe, unsubscribe, ping };
    Kind kind;
    std::size_t replies = 1;  // one per channel for (un)subscribe; an error answers them all
    std::string channel;      // of a one-channel (un)subscribe sent once connected
  };

  // One TCP connection; handlers hold it, so that a dropped one stays valid until they ran.
  struct Connection {
    explicit Connection(const asio::any_io_executor& executor) : socket(executor) {}
    asio::ip::tcp::socket socket;
    Reader reader;
    std::array<char, 16384> buffer{};
    std::string out;  // queued, not yet written
    bool write_active = false;
    bool writable = false;          // the subscription batch is queued: later commands follow it
    std::deque<Awaited> awaited;    // the commands sent, in order, not fully answered
    std::size_t batch_pending = 0;  // subscribe confirmations of the batch still expected
    bool waiting_pong = false;
    // Channels whose (un)subscribe Redis refused for a while (BUSY, say): sent again, as
    // wanted then, after resend_backoff_ (resend_timer_ is armed while any are here).
    std::unordered_set<std::string> in_doubt;
  };
  using ConnectionPtr = std::shared_ptr<Connection>;

  // --- on the bus's executor (its thread, or the strand) ---------------------------------

  void connect() {
    if (stopping_.load(std::memory_order_acquire))
      return;
    auto conn = std::make_shared<Connection>(executor_);
    conn_ = conn;
    connect_timer_.expires_after(options_.redis.connect_timeout);
    connect_timer_.async_wait([this, conn, keep = keep()](std::error_code ec) {
      if (ec || conn != conn_ || connected_)
        return;
      fail("connect to " + describe(options_.redis) + ": timed out");
    });
    async_open(resolver_, conn->socket, options_.redis,
               [this, conn, keep = keep()](const std::string& failure) {
                 if (conn != conn_)
                   return;
                 if (!failure.empty())
                   return fail(failure);
                 on_tcp_connected(conn);
               });
  }

  void on_tcp_connected(const ConnectionPtr& conn) {
    for (const auto& c : handshake_commands(options_.redis, false)) {
      append_command(conn->out, c);
      conn->awaited.push_back({Awaited::Kind::handshake, 1, {}});
    }
    // The batch: the broadcast channel and every user channel wanted now.
    std::vector<std::string> channels{broadcast_channel_};
    for (const auto& [user, count] : subs_)
      if (count > 0)
        channels.push_back(user_channel(user));
    conn->batch_pending = channels.size();
    const std::size_t per_command = options_.sharded ? 1 : 256;
    for (std::size_t i = 0; i < channels.size(); i += per_command) {
      Command c{options_.sharded ? "SSUBSCRIBE" : "SUBSCRIBE"};
      for (std::size_t j = i; j < std::min(channels.size(), i + per_command); ++j)
        c.push_back(channels[j]);
      append_command(conn->out, c);
      conn->awaited.push_back({Awaited::Kind::subscribe, c.size() - 1, {}});
    }
    conn->writable = true;
    flush(conn);
    read(conn);
  }

  // PING, or a one-channel (un)subscribe: dropped before the subscription batch is queued,
  // which subscribes to what is wanted then.
  void send(Awaited::Kind kind, std::string channel = {}) {
    const auto& conn = conn_;
    if (!conn || !conn->writable)
      return;
    const char* name = kind == Awaited::Kind::ping ? "PING"
                       : kind == Awaited::Kind::subscribe
                           ? (options_.sharded ? "SSUBSCRIBE" : "SUBSCRIBE")
                           : (options_.sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE");
    if (channel.empty())
      append_command(conn->out, {name});
    else
      append_command(conn->out, {name, channel});
    conn->awaited.push_back({kind, 1, std::move(channel)});
    flush(conn);
  }

  void flush(const ConnectionPtr& conn) {
    if (conn->write_active || conn->out.empty())
      return;
    conn->write_active = true;
    auto bytes = std::make_shared<std::string>(std::move(conn->out));
    conn->out.clear();
    asio::async_write(conn->socket, asio::buffer(*bytes),
                      [this, conn, bytes, keep = keep()](std::error_code ec, std::size_t) {
                        if (conn != conn_)
                          return;
                        conn->write_active = false;
                        if (ec)
                          return fail("write: " + ec.message());
                        flush(conn);
                      });
  }

  void read(const ConnectionPtr& conn) {
    conn->socket.async_read_some(
        asio::buffer(conn->buffer), [this, conn, keep = keep()](std::error_code ec, std::size_t n) {
          if (conn != conn_)
            return;
          if (ec) {
            return fail(ec == asio::error::eof ? "connection closed by the server"
                                               : "read: " + ec.message());
          }
          if (connected_)
            last_alive_ = std::chrono::system_clock::now();
          try {
            conn->reader.feed(conn->buffer.data(), n);
            Reply reply;
            while (conn == conn_ && conn->reader.next(reply))
              handle(conn, reply);
          } catch (const std::exception& e) {
            return fail(e.what());
          }
          if (conn == conn_)
            read(conn);
        });
  }

  void handle(const ConnectionPtr& conn, const Reply& reply) {
    const std::string* kind =
        reply.is_array() && !reply.elements.empty() && reply.elements[0].type == Reply::Type::string
            ? &reply.elements[0].str
            : nullptr;
    if (kind && (*kind == "message" || *kind == "smessage")) {
      if (reply.elements.size() >= 3)
        on_message(conn, reply.elements[1].str, reply.elements[2].str);
      return;
    }
    // A sunsubscribe that answers no SUNSUBSCRIBE of ours is the server's own: in a cluster,
    // the node no longer serves the channel's slot (it moved), and what is published there
    // now goes elsewhere. Subscribing again finds the primary.
    if (kind && *kind == "sunsubscribe" && reply.elements.size() >= 2 &&
        (conn->awaited.empty() || conn->awaited.front().kind != Awaited::Kind::unsubscribe ||
         conn->awaited.front().channel != reply.elements[1].str)) {
      return fail("the server ended the subscription to " + reply.elements[1].str +
                  " (its slot moved?): subscribing again");
    }
    // Anything else answers the oldest command not fully answered.
    if (conn->awaited.empty())
      return fail("a reply to no command: " + (kind ? *kind : reply.str));
    Awaited& command = conn->awaited.front();
    if (reply.is_error()) {
      const Awaited refused_command = std::move(command);
      conn->awaited.pop_front();
      return refused(conn, refused_command, reply);
    }
    if (!answers(command.kind, reply, kind))
      return fail("a reply that answers no command sent: " + (kind ? *kind : reply.str));
    const auto answered = command.kind;
    if (!command.channel.empty())
      resend_backoff_.reset();  // Redis runs (un)subscribes again
    if (--command.replies == 0)
      conn->awaited.pop_front();
    switch (answered) {
      case Awaited::Kind::handshake:
      case Awaited::Kind::unsubscribe:
        return;
      case Awaited::Kind::ping:
        conn->waiting_pong = false;
        return;
      case Awaited::Kind::subscribe:
        break;
    }
    if (conn->batch_pending > 0) {
      if (--conn->batch_pending == 0)
        on_connected(conn);
      return;
    }
    if (reply.elements.size() < 2)
      return;
    auto it = channel_users_.find(reply.elements[1].str);
    if (it == channel_users_.end())
      return;
    const std::string user = it->second;  // the callback may change channel_users_
    notify_listener([&](BusListener& l) { l.on_bus_subscribed(user); });
  }

  // Whether `reply` (not an error; `kind` its first element when it is an array that has
  // one) is what a command of `command` is answered with.
  static bool answers(Awaited::Kind command, const Reply& reply, const std::string* kind) {
    switch (command) {
      case Awaited::Kind::handshake:
        return !reply.is_array();
      case Awaited::Kind::ping:  // "pong" once subscribed, as RESP2 answers then
        return kind ? *kind == "pong" : reply.type == Reply::Type::status && reply.str == "PONG";
      case Awaited::Kind::subscribe:
        return kind && (*kind == "subscribe" || *kind == "ssubscribe");
      case Awaited::Kind::unsubscribe:
        return kind && (*kind == "unsubscribe" || *kind == "sunsubscribe");
    }
    return false;
  }

  // An error reply to `command`. Redis refusing for a while only what can wait (BUSY while
  // another client's script runs too long, LOADING after a restart, the cluster down) is no
  // reason to drop the connection: that would subscribe again, and repair every connection
  // of this instance from the store, once per health check until it passes. A PING so
  // answered is a sign of life; a one-channel (un)subscribe is sent again later. Anything
  // else drops the connection, which subscribes again to what is wanted then.
  void refused(const ConnectionPtr& conn, const Awaited& command, const Reply& reply) {
    const bool for_a_while = says_try_again(reply) && !says_wrong_server(reply);
    switch (command.kind) {
      case Awaited::Kind::handshake:
        return fail("authentication: " + reply.str);
      case Awaited::Kind::ping:
        if (!for_a_while)
          break;
        conn->waiting_pong = false;
        return;
      case Awaited::Kind::subscribe:
      case Awaited::Kind::unsubscribe:
        if (!for_a_while || command.channel.empty())
          break;
        return resend_later(conn, command.channel);
    }
    fail("error reply: " + reply.str);
  }

  void resend_later(const ConnectionPtr& conn, const std::string& channel) {
    const bool armed = !conn->in_doubt.empty();
    conn->in_doubt.insert(channel);
    if (armed)
      return;
    resend_timer_.expires_after(resend_backoff_.next());
    resend_timer_.async_wait([this, conn, keep = keep()](std::error_code ec) {
      if (ec || conn != conn_)
        return;
      // What is wanted now: a user may have come or gone since.
      for (const auto& channel : std::exchange(conn->in_doubt, {}))
        send(channel_users_.count(channel) > 0 ? Awaited::Kind::subscribe
                                               : Awaited::Kind::unsubscribe,
             channel);
    });
  }

  void on_message(const ConnectionPtr& conn, const std::string& channel,
                  const std::string& payload) {
    // Until the batch is confirmed, on_bus_recovered() has not run: what arrives now is in
    // the store already and comes with the repair; delivering it first would put a seq
    // above the gap in a connection's position, and the repair would start after it.
    if (conn->batch_pending > 0)
      return;
    if (payload == repair_message) {
      notify_listener([](BusListener& l) { l.on_bus_recovered(); });
      return;
    }
    auto decoded = decode_bus_message_with_origin(payload);
    if (!decoded) {
      report("malformed message on " + channel);
      return;
    }
    deliver(*decoded);
  }

  void on_connected(const ConnectionPtr& conn) {
    connected_ = true;
    if (failures_in_row_ > 0)
      report("connected again");
    failures_in_row_ = 0;
    connect_timer_.cancel();
    backoff_.reset();
    state_.store(BusState::connected, std::memory_order_release);
    notify_listener([](BusListener& l) { l.on_bus_state(BusState::connected); });
    // Whatever was published while this instance was not subscribed comes from the store.
    notify_listener([](BusListener& l) { l.on_bus_recovered(); });
    // And what it refused to publish meanwhile is in the store, unknown to the others.
    publisher_.send_pending_repair();
    subscriber_attempt_finished();
    arm_ping(conn);
    last_alive_ = std::chrono::system_clock::now();
    start_replay();
  }

  // --- the replay of session ends ----------------------------------------------------
  // A session:end published while this bus was not subscribed is read from the log once the
  // subscription is back (what is published after that arrives live), on the publishing
  // connection, and delivered with Envelope::replayed_sent_at.

  void start_replay() {
    if (replay_running_ || !replay_from_ || !connected_ ||
        options_.session_end_retention.count() <= 0)
      return;
    replay_running_ = true;
    replay_origin_ = *replay_from_;
    replay_from_.reset();
    read_log_from(std::to_string(unix_ms(replay_origin_ - replay_margin)));
  }

  void read_log_from(const std::string& start) {
    std::string command;
    append_command(command,
                   {"XRANGE", session_end_log_, start, "+", "COUNT", std::to_string(replay_page)});
    // `this` alone: the publisher (a member) calls it from a handler that holds the bus, and
    // holding the bus here too would be a cycle through publisher_ that leaks it when the
    // host's context is destroyed with the query unanswered.
    if (!publisher_.query(command, [this](const Reply* reply) { on_log_page(reply); }))
      replay_interrupted();
  }

  void on_log_page(const Reply* reply) {
    if (!reply)
      return replay_interrupted();
    if (reply->is_error() || !reply->is_array()) {
      report("reading the log of session ends: " +
             (reply->is_error() ? reply->str : std::string("unexpected reply")));
      return replay_finished();
    }
    std::string last_id;
    for (const auto& entry : reply->elements) {
      if (!entry.is_array() || entry.elements.size() < 2 || !entry.elements[1].is_array())
        continue;
      last_id = entry.elements[0].str;
      const std::string* message = nullptr;
      // When the sender called publish(); an entry without it (another writer), its id's time.
      auto ms = stream_id_ms(last_id);
      const auto& fields = entry.elements[1].elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "m")
          message = &fields[i + 1].str;
        else if (fields[i].str == "t")
          ms = stream_id_ms(fields[i + 1].str);
      }
      auto decoded = message ? decode_bus_message_with_origin(*message) : std::nullopt;
      // Whole milliseconds: an end and an attach within the same one count as the end second.
      const auto sent_at = ms ? time_at_unix_ms(*ms + 1) : std::nullopt;
      if (!decoded || !decoded->envelope.every_instance || !sent_at) {
        report("malformed entry " + last_id + " in " + session_end_log_);
        continue;
      }
      decoded->envelope.replayed_sent_at = sent_at;
      deliver(*decoded);
    }
    if (reply->elements.size() == replay_page && !last_id.empty())
      return read_log_from("(" + last_id);
    replay_finished();
  }

  // The publishing connection failed before the log was read: read it all again when it is
  // back (what was delivered already is harmless to deliver twice).
  void replay_interrupted() {
    replay_from_ = replay_from_ ? std::min(*replay_from_, replay_origin_) : replay_origin_;
    replay_running_ = false;
  }

  void replay_finished() {
    replay_running_ = false;
    start_replay();  // the subscription dropped again meanwhile
  }

  void arm_ping(const ConnectionPtr& conn) {
    if (options_.health_check_interval.count() <= 0)
      return;
    ping_timer_.expires_after(options_.health_check_interval);
    ping_timer_.async_wait([this, conn, keep = keep()](std::error_code ec) {
      if (ec || conn != conn_)
        return;
      if (conn->waiting_pong)
        return fail("no answer to PING");
      conn->waiting_pong = true;
      send(Awaited::Kind::ping);
      arm_ping(conn);
    });
  }

  void fail(const std::string& why) {
    if (stopping_.load(std::memory_order_acquire))
      return;
    // What is published from the last sign of life on may be lost: the replay reads from there.
    if (connected_)
      replay_from_ = replay_from_ ? std::min(*replay_from_, last_alive_) : last_alive_;
    // While Redis stays away, attempts 1, 2, 4, 8... are reported, not every one.
    ++failures_in_row_;
    if (worth_reporting(failures_in_row_))
      report(why +
             (failures_in_row_ > 1 ? " (attempt " + std::to_string(failures_in_row_) + ")" : ""));
    drop_connection();
    if (state_.exchange(BusState::reconnecting, std::memory_order_acq_rel) == BusState::connected) {
      notify_listener([](BusListener& l) { l.on_bus_state(BusState::reconnecting); });
    }
    subscriber_attempt_finished();
    reconnect_timer_.expires_after(backoff_.next());
    reconnect_timer_.async_wait([this, keep = keep()](std::error_code ec) {
      if (!ec)
        connect();
    });
  }

  void drop_connection() {
    connected_ = false;
    resolver_.cancel();  // a resolve still running belongs to the dropped connection
    if (conn_) {
      std::error_code ignored;
      conn_->socket.close(ignored);
      conn_.reset();
    }
    ping_timer_.cancel();
    resend_timer_.cancel();
  }

  void apply_change(const std::string& user, int delta) {
    auto it = subs_.find(user);
    const int before = it == subs_.end() ? 0 : it->second;
    const int after = before + delta;
    if (after == 0) {
      if (it != subs_.end())
        subs_.erase(it);
    } else if (it == subs_.end()) {
      subs_.emplace(user, after);
    } else {
      it->second = after;
    }
    if ((before > 0) == (after > 0))
      return;
    auto channel = user_channel(user);
    if (after > 0) {
      channel_users_[channel] = user;
      send(Awaited::Kind::subscribe, std::move(channel));
    } else {
      channel_users_.erase(channel);
      send(Awaited::Kind::unsubscribe, std::move(channel));
    }
  }

  void deliver(const BusMessage& message) {
    // This instance's hub ended its own connections when it sent the end (end_sessions()):
    // handed back later, the end would also end a session begun since, here.
    if (message.envelope.every_instance && message.origin == origin_)
      return;
    notify_listener([&](BusListener& l) { l.on_bus_message(message.envelope); });
  }

  template <typename F>
  void notify_listener(F&& f) {
    std::lock_guard lock(host_mutex_);
    if (stopping_.load(std::memory_order_acquire) || !listener_)
      return;
    try {
      f(*listener_);
    } catch (const std::exception& e) {
      report(std::string("listener: ") + e.what());
    } catch (...) {
      report("listener: unknown exception");
    }
  }

  // Once for the subscriber connection (guarded here) and once for the publisher's.
  void subscriber_attempt_finished() {
    if (subscriber_attempt_done_)
      return;
    subscriber_attempt_done_ = true;
    first_attempt_finished();
  }

  void first_attempt_finished() {
    {
      std::lock_guard lock(first_mutex_);
      if (first_attempts_left_ == 0 || --first_attempts_left_ > 0)
        return;
    }
    first_cv_.notify_all();
  }

  void report(const std::string& what) noexcept {
    try {
      std::lock_guard lock(host_mutex_);
      if (stopping_.load(std::memory_order_acquire))
        return;
      const std::string text = "redis bus (" + describe(options_.redis) + "): " + what;
      if (options_.on_error)
        options_.on_error(text);
      else
        std::fprintf(stderr, "notify: %s\n", text.c_str());
    } catch (...) {
    }
  }

  RedisBusOptions options_;
  std::string broadcast_channel_;
  std::string session_end_log_;
  const std::string origin_ = random_origin();  // in this bus's session ends ("o")
  std::unique_ptr<asio::io_context> own_io_;    // without options_.executor, run by thread_
  asio::any_io_executor executor_;              // own_io_'s, or a strand on options_.executor
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer connect_timer_;
  asio::steady_timer ping_timer_;
  asio::steady_timer resend_timer_;  // the connection's channels in doubt
  Backoff backoff_;
  Backoff resend_backoff_;
  std::thread thread_;
  std::atomic<BusState> state_{BusState::stopped};
  std::atomic<bool> stopping_{false};
  BusListener* listener_ = nullptr;
  // Held while host code runs (the listener, on_error): stop() waits for it.
  std::recursive_mutex host_mutex_;

  std::mutex lifecycle_mutex_;
  bool started_ = false;
  bool stopped_ = false;

  std::mutex first_mutex_;
  std::condition_variable first_cv_;
  int first_attempts_left_ = 2;  // the subscriber's and the publisher's

  // On the bus's executor only.
  ConnectionPtr conn_;
  bool connected_ = false;
  unsigned long failures_in_row_ = 0;
  bool subscriber_attempt_done_ = false;
  std::unordered_map<std::string, int> subs_;                   // user → subscribe count
  std::unordered_map<std::string, std::string> channel_users_;  // channel → user, while wanted
  std::chrono::system_clock::time_point last_alive_;  // the subscriber's last read, connected
  std::optional<std::chrono::system_clock::time_point> replay_from_;  // a replay is due
  std::chrono::system_clock::time_point replay_origin_;               // of the running one
  bool replay_running_ = false;

  Publisher publisher_;  // last: its handlers use the members above
};

// --- RedisBus -------------------------------------------------------------------------

RedisBus::RedisBus(RedisBusOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}
RedisBus::~RedisBus() {
  impl_->stop();
}
void RedisBus::start(BusListener& listener) {
  impl_->start(listener);
}
void RedisBus::stop() noexcept {
  impl_->stop();
}
void RedisBus::publish(const Envelope& envelope, std::error_code& ec) {
  impl_->publish(envelope, ec);
}
void RedisBus::subscribe(std::string_view user) {
  impl_->change(user, +1);
}
void RedisBus::unsubscribe(std::string_view user) {
  impl_->change(user, -1);
}
BusState RedisBus::state() const noexcept {
  return impl_->state();
}
const RedisBusOptions& RedisBus::options() const noexcept {
  return impl_->options();
}
std::string RedisBus::user_channel(std::string_view user) const {
  return impl_->user_channel(user);
}
std::string RedisBus::broadcast_channel() const {
  return impl_->broadcast_channel();
}

}  // namespace notify
