#include "publisher.hpp"

#include <notify/error.hpp>

#include <asio/post.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>

namespace notify::redis_detail {

Publisher::Publisher(asio::any_io_executor executor, RedisOptions options,
                     std::string repair_command, std::size_t max_backlog_bytes, bool gather,
                     Hooks hooks)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      repair_command_(std::move(repair_command)),
      max_backlog_bytes_(max_backlog_bytes),
      gather_(gather),
      hooks_(std::move(hooks)),
      resolver_(executor_),
      connect_timer_(executor_),
      reconnect_timer_(executor_),
      watchdog_timer_(executor_),
      backoff_(options_.backoff_initial, options_.backoff_max) {}

// --- any thread -------------------------------------------------------------------------

void Publisher::publish(std::string_view command, bool repairable, std::error_code& ec,
                        std::string resend) {
  std::lock_guard lock(mutex_);
  if (!ready_ || backlog_.size() + command.size() > max_backlog_bytes_) {
    repair_needed_ = repair_needed_ || repairable;
    ec = make_error_code(errc::bus_unavailable);
    return;
  }
  ec.clear();
  hand_over_repair_locked();
  hand_over_locked(command, repairable);
  if (!resend.empty())
    unanswered_resends_.emplace_back(sent_, std::move(resend));
}

void Publisher::refused(bool repairable) {
  std::lock_guard lock(mutex_);
  repair_needed_ = repair_needed_ || repairable;
}

void Publisher::send_pending_repair() {
  std::lock_guard lock(mutex_);
  if (ready_)
    hand_over_repair_locked();
}

void Publisher::hand_over_repair_locked() {
  if (!repair_needed_)
    return;
  // Past the backlog's bound if need be: it is one small message.
  repair_needed_ = false;
  hand_over_locked(repair_command_, true);
}

void Publisher::hand_over_locked(std::string_view command, bool repairable) {
  const bool awaiting_reply = gather_ && sent_ > acked_;
  ++sent_;
  if (repairable)
    last_repairable_ = sent_;
  if (!draining_ && !awaiting_reply) {  // then backlog_ is empty: nothing goes ahead of it
    const auto n = send_locked(command);
    if (n == command.size())
      return;
    // A full socket buffer, or a broken connection: the bus's executor writes the rest, and
    // finds the failure if there is one.
    command.remove_prefix(n);
    start_draining_locked();
  }
  backlog_.append(command);
}

std::size_t Publisher::send_locked(std::string_view bytes) {
  const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

void Publisher::start_draining_locked() {
  draining_ = true;
  asio::post(executor_, [this, keep = keep()] { drain(); });
}

bool Publisher::ready() const noexcept {
  return ready_.load(std::memory_order_acquire);
}

bool Publisher::query(std::string_view command, QueryDone done) {
  std::uint64_t number;
  {
    std::lock_guard lock(mutex_);
    if (!ready_)
      return false;
    hand_over_repair_locked();
    hand_over_locked(command, false);
    number = sent_;
  }
  // Only this executor reads replies: none can be read before the entry is here.
  queries_.emplace_back(number, std::move(done));
  return true;
}

// --- the bus's executor -----------------------------------------------------------------

void Publisher::start(std::weak_ptr<void> owner) {
  {
    std::lock_guard lock(mutex_);
    owner_ = std::move(owner);
  }
  connect();
}

void Publisher::stop() {
  stopping_ = true;
  close_connection();
  resolver_.cancel();
  connect_timer_.cancel();
  reconnect_timer_.cancel();
}

void Publisher::connect() {
  if (stopping_)
    return;
  auto conn = std::make_shared<Connection>(executor_);
  conn_ = conn;
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([this, conn, keep = keep()](std::error_code ec) {
    if (ec || conn != conn_ || ready())
      return;
    fail("connect to " + describe(options_) + ": timed out");
  });
  async_open(resolver_, conn->socket, options_,
             [this, conn, keep = keep()](const std::string& failure) {
               if (conn != conn_)
                 return;
               if (!failure.empty())
                 return fail(failure);
               on_tcp_connected(conn);
             });
}

void Publisher::on_tcp_connected(const ConnectionPtr& conn) {
  read(conn);
  const auto handshake = handshake_commands(options_, false);
  if (handshake.empty())
    return become_ready(conn);
  conn->handshake_pending = handshake.size();
  for (const auto& c : handshake)
    append_command(conn->out, c);
  write_out(conn);
}

void Publisher::become_ready(const ConnectionPtr& conn) {
  connect_timer_.cancel();
  if (refusals_in_row_ == 0) {  // else settle() does this once Redis runs the commands
    backoff_.reset();
    if (failures_in_row_ > 0)
      hooks_.report("publishing connection: connected again");
    failures_in_row_ = 0;
  }
  watched_acked_ = 0;
  watched_waiting_ = false;
  {
    std::lock_guard lock(mutex_);
    ready_ = true;
    fd_ = conn->socket.native_handle();
    sent_ = 0;
    acked_ = 0;
    last_repairable_ = 0;
    // Ahead of anything published from now on. Should this connection fail before the
    // reply, the repair is unanswered and is asked for again on the next one.
    hand_over_repair_locked();
    auto resends = std::move(resend_next_);
    resend_next_.clear();
    for (auto& command : resends) {
      hand_over_locked(command, false);
      unanswered_resends_.emplace_back(sent_, std::move(command));
    }
  }
  arm_watchdog(conn);
  first_attempt_finished();
  if (hooks_.became_ready)
    hooks_.became_ready();
}

void Publisher::drain() {
  const auto conn = conn_;
  if (!conn || conn->write_active)
    return;
  {
    std::lock_guard lock(mutex_);
    if (!ready_)
      return;
    if (backlog_.empty()) {
      draining_ = false;
      hand_over_repair_locked();  // refused while the backlog was full
      return;
    }
    conn->out.swap(backlog_);
    backlog_.clear();
  }
  write_out(conn);
}

void Publisher::write_out(const ConnectionPtr& conn) {
  conn->write_active = true;
  asio::async_write(conn->socket, asio::buffer(conn->out),
                    [this, conn, keep = keep()](std::error_code ec, std::size_t) {
                      if (conn != conn_)
                        return;
                      conn->write_active = false;
                      conn->out.clear();
                      if (ec)
                        return fail("write: " + ec.message());
                      drain();  // nothing to do before the handshake's replies: not ready yet
                    });
}

void Publisher::read(const ConnectionPtr& conn) {
  conn->socket.async_read_some(
      asio::buffer(conn->buffer), [this, conn, keep = keep()](std::error_code ec, std::size_t n) {
        if (conn != conn_)
          return;
        if (ec) {
          return fail(ec == asio::error::eof ? "publishing connection closed by the server"
                                             : "read: " + ec.message());
        }
        std::uint64_t replies = 0;
        try {
          conn->reader.feed(conn->buffer.data(), n);
          Reply reply;
          while (conn == conn_ && conn->reader.next(reply)) {
            if (conn->handshake_pending > 0) {
              if (reply.is_error())
                return fail("authentication: " + reply.str);
              if (--conn->handshake_pending == 0)
                become_ready(conn);
            } else if (says_try_again(reply)) {
              // Nothing of it ran: it and what follows count as unanswered, as when a
              // connection fails (a query is asked again, a resend form goes on the next
              // connection, a doorbell is repaired). A server that is the right one but
              // says "not now" (LOADING, the cluster down, BUSY) is asked again after the
              // backoff, which keeps growing until it runs what it refused (settle()).
              acknowledge(replies);
              const auto code = reply.str.substr(0, reply.str.find(' '));
              if (says_wrong_server(reply))
                return fail("the server answered " + code +
                            " (a replica now, or the slot moved): connecting again");
              ++refusals_in_row_;
              return fail("the server answered " + code +
                          " (not now: nothing ran): connecting again after a pause");
            } else {
              ++replies;
              on_reply(reply, acked_ + replies);
            }
          }
        } catch (const std::exception& e) {
          acknowledge(replies);  // answered: not counted as lost by fail()
          return fail(e.what());
        }
        if (conn != conn_)
          return;
        acknowledge(replies);
        if (replies > 0 && refusals_in_row_ > 0)
          settle();
        read(conn);
      });
}

void Publisher::settle() {
  {
    std::lock_guard lock(mutex_);
    if (!unanswered_resends_.empty() || !resend_next_.empty() || repair_needed_)
      return;  // what was refused is not all through yet
  }
  refusals_in_row_ = 0;
  backoff_.reset();
  if (failures_in_row_ > 0)
    hooks_.report("publishing connection: Redis runs what it refused again");
  failures_in_row_ = 0;
}

void Publisher::on_reply(const Reply& reply, std::uint64_t number) {
  if (!queries_.empty() && queries_.front().first == number) {
    auto done = std::move(queries_.front().second);
    queries_.pop_front();
    done(&reply);
    return;
  }
  if (!reply.is_error())
    return;
  // PUBLISH is refused only by configuration (ACL, a script error): reported, and
  // 1, 2, 4, 8... of them so that a log is not flooded at the publish rate.
  ++error_replies_;
  if (worth_reporting(error_replies_))
    hooks_.report("publish refused (" + std::to_string(error_replies_) + " so far): " + reply.str);
}

void Publisher::acknowledge(std::uint64_t replies) {
  if (replies == 0)
    return;
  std::lock_guard lock(mutex_);
  acked_ += replies;
  while (!unanswered_resends_.empty() && unanswered_resends_.front().first <= acked_)
    unanswered_resends_.pop_front();
  if (!ready_ || draining_ || backlog_.empty())
    return;
  // What gathered while replies were awaited leaves now, together.
  backlog_.erase(0, send_locked(backlog_));
  if (!backlog_.empty())
    start_draining_locked();
}

void Publisher::arm_watchdog(const ConnectionPtr& conn) {
  if (options_.command_timeout.count() <= 0)
    return;
  watchdog_timer_.expires_after(options_.command_timeout);
  watchdog_timer_.async_wait([this, conn, keep = keep()](std::error_code ec) {
    if (ec || conn != conn_)
      return;
    std::uint64_t sent;
    {
      std::lock_guard lock(mutex_);
      sent = sent_;
    }
    // A reply was due a whole period ago and none has come since.
    if (watched_waiting_ && acked_ == watched_acked_)
      return fail("no reply to a publish within " +
                  std::to_string(options_.command_timeout.count()) + " ms");
    watched_acked_ = acked_;
    watched_waiting_ = acked_ < sent;
    arm_watchdog(conn);
  });
}

void Publisher::fail(const std::string& why) {
  if (stopping_)
    return;
  ++failures_in_row_;
  if (worth_reporting(failures_in_row_))
    hooks_.report(
        "publishing connection: " + why +
        (failures_in_row_ > 1 ? " (attempt " + std::to_string(failures_in_row_) + ")" : ""));
  const auto unanswered = close_connection();
  if (unanswered > 0 && worth_reporting(failures_in_row_)) {
    std::size_t resends;
    {
      std::lock_guard lock(mutex_);
      resends = resend_next_.size();
    }
    hooks_.report(std::to_string(unanswered) +
                  " published messages may not have reached Redis: what the store holds is "
                  "repaired on every instance once the publishing connection is back" +
                  (resends > 0 ? ", and " + std::to_string(resends) + " session ends are sent again"
                               : std::string()));
  }
  first_attempt_finished();
  reconnect_timer_.expires_after(backoff_.next());
  reconnect_timer_.async_wait([this, keep = keep()](std::error_code ec) {
    if (!ec)
      connect();
  });
}

std::uint64_t Publisher::close_connection() {
  std::uint64_t unanswered = 0;
  {
    std::lock_guard lock(mutex_);
    if (ready_ && sent_ > acked_) {
      unanswered = sent_ - acked_;
      repair_needed_ = repair_needed_ || last_repairable_ > acked_;
    }
    for (auto& [number, command] : unanswered_resends_)
      resend_next_.push_back(std::move(command));  // the answered ones left in acknowledge()
    unanswered_resends_.clear();
    ready_ = false;
    fd_ = -1;
    sent_ = 0;
    last_repairable_ = 0;
    backlog_.clear();
    draining_ = false;
  }
  watchdog_timer_.cancel();
  resolver_.cancel();
  if (conn_) {
    std::error_code ignored;
    conn_->socket.close(ignored);
    conn_.reset();
  }
  auto queries = std::move(queries_);
  queries_.clear();
  for (auto& [number, done] : queries)
    done(nullptr);
  return unanswered;
}

void Publisher::first_attempt_finished() {
  if (first_attempt_done_)
    return;
  first_attempt_done_ = true;
  if (hooks_.first_attempt_done)
    hooks_.first_attempt_done();
}

}  // namespace notify::redis_detail
