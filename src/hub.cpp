#include <notify/hub.hpp>
#include <notify/in_process_bus.hpp>
#include <notify/memory_store.hpp>

#include "flush_lane.hpp"
#include "json_shape.hpp"
#include "prefetch.hpp"

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iterator>
#include <optional>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

namespace notify {

using Clock = std::chrono::steady_clock;

// Lock order: sequence_mutex_ → delivery_mutex_ → registry_mutex_ → a sink's mutex.
class NotificationHub::Impl final : public SinkOwner,
                                    public BusListener,
                                    public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, HubOptions options, std::shared_ptr<Store> store,
       std::shared_ptr<Bus> bus)
      : strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        store_(store ? std::move(store) : std::make_shared<MemoryStore>()),
        bus_(bus ? std::move(bus) : std::make_shared<InProcessBus>()),
        heartbeat_timer_(strand_),
        session_timer_(strand_),
        batch_timer_(strand_),
        subscription_timer_(strand_) {
    if (options_.heartbeat_interval < std::chrono::seconds(1))
      throw std::invalid_argument("HubOptions: heartbeat_interval must be at least 1 s");
    if (options_.session_check_interval < std::chrono::milliseconds(10))
      throw std::invalid_argument("HubOptions: session_check_interval must be at least 10 ms");
    if (options_.batch_window.count() < 0)
      throw std::invalid_argument("HubOptions: batch_window must not be negative");
    if (options_.subscription_wait.count() < 0)
      throw std::invalid_argument("HubOptions: subscription_wait must not be negative");
    if (options_.max_connections == 0 || options_.max_connections_per_user == 0)
      throw std::invalid_argument("HubOptions: connection limits must be at least 1");
    if (options_.queue.max_events == 0 || options_.queue.max_bytes == 0)
      throw std::invalid_argument("HubOptions: queue limits must be at least 1");
    if (options_.snapshot_limit == 0)
      throw std::invalid_argument("HubOptions: snapshot_limit must be at least 1");
    if (options_.max_prime_bytes < 64 * 1024)
      throw std::invalid_argument("HubOptions: max_prime_bytes must be at least 64 KiB");
    if (options_.max_pending_publishes == 0)
      throw std::invalid_argument("HubOptions: max_pending_publishes must be at least 1");
    if (options_.validation.max_data_depth == 0 ||
        options_.validation.max_data_depth > default_max_data_depth)
      throw std::invalid_argument(
          fmt::format("HubOptions: validation.max_data_depth must be 1 to {}: stores read "
                      "notifications back with from_json(), which refuses deeper data",
                      default_max_data_depth));
  }

  void start() {
    bus_->start(*this);
    arm_timers();
  }

  // --- publishing -----------------------------------------------------------------

  // One notification per user of `users`, each a copy of `draft`.
  static std::vector<Notification> drafts_for(const std::vector<std::string>& users,
                                              const Notification& draft) {
    std::vector<Notification> drafts;
    drafts.reserve(users.size());
    for (const auto& user : users) {
      auto copy = draft;
      copy.user_id = user;
      copy.broadcast = false;
      drafts.push_back(std::move(copy));
    }
    return drafts;
  }

  std::vector<std::string> publish_many(std::vector<Notification> drafts) {
    for (auto& d : drafts)
      check_draft(d);
    return publish_validated(std::move(drafts));
  }

  std::vector<std::string> publish_validated(std::vector<Notification> drafts) {
    auto lock = lock_for_call();
    if (!lock)
      return publish_queued(std::move(drafts));
    auto sent = store_and_send(std::move(drafts), std::move(*lock));
    if (sent.ec)
      throw std::system_error(sent.ec, "notify: publish");
    if (!sent.reused.empty())
      throw key_reused(sent.ids[sent.reused.front()]);
    return std::move(sent.ids);
  }

  // A publish refused because its idempotency key was given to another notification.
  static ValidationError key_reused(const std::string& first_id) {
    return ValidationError("idempotencyKey",
                           "already used for a different notification (" + first_id + ")");
  }

  // key_reused() for a handler on another thread. Thrown, not copied into the pointer: a copy
  // would share the message's reference count (libstdc++'s logic_error) with a temporary
  // released here while the handler reads its own, which ThreadSanitizer reports as a race.
  static std::exception_ptr key_reused_error(const std::string& first_id) {
    try {
      throw key_reused(first_id);
    } catch (...) {
      return std::current_exception();
    }
  }

  // What store_and_send() did with a batch; positions are the drafts'.
  struct SentBatch {
    std::vector<std::string> ids;     // every draft's id, in draft order
    std::vector<std::size_t> reused;  // ascending: the drafts whose key the store holds for
                                      // another notification (nothing stored or sent for them)
    std::vector<std::size_t> unsent;  // ascending: stored, not sent (the one the bus refused,
                                      // and those after it in id order)
    std::error_code ec;               // the bus's refusal
  };

  // One store call for all of `drafts` (SqliteStore: one commit), then the bus in id order:
  // usually the drafts' order, but a store that had to send a refused draft again gave it a
  // later id than drafts after it (RedisStore), and a connection drops an id below one it
  // has seen. Throws hub_stopped and what the store throws.
  SentBatch store_and_send(std::vector<Notification> drafts,
                           [[maybe_unused]] std::unique_lock<std::mutex> sequence) {
    SentBatch sent;
    throw_if_stopped();
    auto stored = store_->append_all(std::move(drafts));
    sent.ids.resize(stored.size());
    for (std::size_t i = 0; i < stored.size(); ++i)
      if (stored[i].replay_differs)
        sent.reused.push_back(i);
    const auto order = id_order(stored);
    for (std::size_t k = 0; k < stored.size(); ++k) {
      const auto i = order.empty() ? k : order[k];
      if (!sent.ec)  // the id comes back for the one the bus refuses too
        sent.ids[i] = hand_to_bus(std::move(stored[i]), sent.ec);
      if (sent.ec) {
        sent.unsent.push_back(i);
        if (sent.ids[i].empty())
          sent.ids[i] = std::move(stored[i].id);
      }
    }
    std::sort(sent.unsent.begin(), sent.unsent.end());  // in draft order
    return sent;
  }

  // The positions of `stored` by increasing id, or none when that is their order already
  // (replays keep their first id and are not sent: they do not count).
  static std::vector<std::size_t> id_order(const std::vector<Notification>& stored) {
    const auto seq = [&](std::size_t i) { return parse_sequence(stored[i].id).value_or(0); };
    std::uint64_t last = 0;
    bool ordered = true;
    for (std::size_t i = 0; i < stored.size() && ordered; ++i) {
      if (stored[i].replayed)
        continue;
      ordered = seq(i) > last;
      last = seq(i);
    }
    std::vector<std::size_t> order;
    if (ordered)
      return order;
    order.resize(stored.size());
    for (std::size_t i = 0; i < order.size(); ++i)
      order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return seq(a) < seq(b); });
    return order;
  }

  // publish_many() of one draft, without its two vectors.
  std::string publish_one(Notification draft) {
    check_draft(draft);
    return publish_validated(std::move(draft));
  }

  std::string publish_validated(Notification draft) {
    auto lock = lock_for_call();
    if (!lock) {
      std::vector<Notification> drafts;
      drafts.push_back(std::move(draft));
      return std::move(publish_queued(std::move(drafts)).front());
    }
    std::error_code ec;
    std::string id;
    bool reused = false;
    {
      const auto sequence = std::move(*lock);
      throw_if_stopped();
      auto stored = store_->append(std::move(draft));
      reused = stored.replay_differs;
      id = hand_to_bus(std::move(stored), ec);
    }
    if (ec)
      throw std::system_error(ec, "notify: publish");
    if (reused)
      throw key_reused(id);
    return id;
  }

  // The sequence lock for a synchronous publish or read-state change that writes the store
  // in the call, or none when it should take its turn in the store thread's queue instead
  // (publish_queued(), mark()): with a store that may block, whenever a call is queued or
  // being run there, or the lock is taken. Publishes that meet there share one store call
  // (one SQLite commit, one Redis pipeline) instead of each waiting for the lock and then for
  // its own call, which during a Redis outage meant one command_timeout after another;
  // callers are served in turn, not whoever takes the lock again first; and a thread's
  // earlier async call reaches the store before its synchronous one. Alone, a call writes in
  // the call, without crossing threads, as does any call made on the store thread. A store
  // that publishes its appends needs no sequence lock: calls that find the queue empty and
  // the store thread idle write in the call at once, side by side (Redis orders them), and
  // the others take their turn as above.
  std::optional<std::unique_lock<std::mutex>> lock_for_call() {
    if (!store_->may_block())
      return sequence_lock();
    {
      std::lock_guard lock(store_queue_mutex_);
      if (store_thread_.get_id() == std::this_thread::get_id())
        return sequence_lock();
      if (!store_queue_.empty() || store_thread_has_calls_)
        return std::nullopt;
    }
    if (store_->publishes_appends())
      return sequence_lock();  // no lock
    // A batch the store thread takes from here on holds only calls concurrent with this
    // one: either may go first.
    std::unique_lock lock(sequence_mutex_, std::try_to_lock);
    if (!lock.owns_lock())
      return std::nullopt;
    return lock;
  }

  // The outcome of a call queued by a thread that waits for it: set once, on the store
  // thread (or in enqueue(), which refused it), and taken by the waiting thread.
  template <typename Result>
  class CallerWait {
   public:
    void complete(std::exception_ptr error, Result result) {
      std::lock_guard lock(mutex_);
      error_ = std::move(error);
      result_ = std::move(result);
      done_ = true;
      completed_.notify_one();
    }
    // Returns the result or throws the error.
    Result wait() {
      std::unique_lock lock(mutex_);
      completed_.wait(lock, [this] { return done_; });
      if (error_)
        std::rethrow_exception(std::move(error_));
      return std::move(result_);
    }

   private:
    std::mutex mutex_;
    std::condition_variable completed_;
    bool done_ = false;
    std::exception_ptr error_;
    Result result_{};
  };

  // A synchronous publish queued for the store thread: returns its ids or throws what it
  // completed with. Not refused by max_pending_publishes, which bounds what piles up with
  // no thread waiting behind it.
  std::vector<std::string> publish_queued(std::vector<Notification> drafts) {
    auto wait = std::make_shared<CallerWait<std::vector<std::string>>>();
    auto done = [wait](std::exception_ptr error, std::string* ids, std::size_t count) {
      std::vector<std::string> moved;
      if (!error) {
        try {
          moved.assign(std::make_move_iterator(ids), std::make_move_iterator(ids + count));
        } catch (...) {
          error = std::current_exception();
        }
      }
      wait->complete(std::move(error), std::move(moved));
    };
    enqueue(QueuedPublish{std::move(drafts), std::move(done)}, Waiting::caller);
    return wait->wait();
  }

  // --- publishing without waiting for the store (async_publish) ------------------------

  // The most drafts one store call of the store thread writes (unless one call brings
  // more), and the most read-state changes: a bound on how long one transaction or pipeline
  // holds the store and the sequence lock.
  static constexpr std::size_t max_publish_batch = 256;

  // One async_publish() (one draft) or async_publish_to() (one per user) call.
  struct QueuedPublish {
    std::vector<Notification> drafts;
    PublishCompletion done;
  };
  // One async_mark_read() (with `id`) or async_mark_all_read() call.
  struct QueuedMark {
    std::string user;
    std::optional<std::string> id;
    MarkCompletion done;
  };
  // An async_list() call: `run` reads and completes when `refused` is null, else completes
  // with it. (The hub's own reads are turns of the repair task, which has no place in the
  // queue: see run_store_thread().)
  struct QueuedRead {
    std::function<void(std::exception_ptr refused)> run;
  };
  using QueuedCall = std::variant<QueuedPublish, QueuedMark, QueuedRead>;

  void start_publish(Notification draft, PublishCompletion done) {
    if (draft.broadcast)
      draft.user_id.clear();
    check_draft(draft);
    if (!store_->may_block()) {
      std::exception_ptr error;
      std::string id;
      try {
        id = publish_validated(std::move(draft));
      } catch (...) {
        error = std::current_exception();
      }
      const std::size_t count = error ? 0 : 1;
      complete(done, std::move(error), &id, count);
      return;
    }
    std::vector<Notification> drafts;
    drafts.push_back(std::move(draft));
    enqueue(QueuedPublish{std::move(drafts), std::move(done)});
  }

  void start_publish_to(const std::vector<std::string>& users, const Notification& draft,
                        PublishCompletion done) {
    auto drafts = drafts_for(users, draft);
    for (auto& d : drafts)
      check_draft(d);
    if (drafts.empty()) {  // no store call; as publish_to(), it fails only on a stopped hub
      std::exception_ptr error;
      if (stopped_.load(std::memory_order_acquire))
        error = std::make_exception_ptr(std::system_error(errc::hub_stopped, "notify: publish"));
      complete(done, std::move(error), nullptr, 0);
      return;
    }
    if (!store_->may_block()) {
      std::exception_ptr error;
      std::vector<std::string> ids;
      try {
        ids = publish_validated(std::move(drafts));
      } catch (...) {
        error = std::current_exception();
      }
      complete(done, std::move(error), ids.data(), ids.size());
      return;
    }
    enqueue(QueuedPublish{std::move(drafts), std::move(done)});
  }

  void start_mark(std::string user, std::optional<std::string> id, MarkCompletion done) {
    if (user.empty())
      throw std::invalid_argument("notify: the user is empty");
    QueuedMark call{std::move(user), std::move(id), std::move(done)};
    if (!store_->may_block()) {
      run_mark(call);
      return;
    }
    enqueue(std::move(call));
  }

  void start_list(std::string user, bool unread_only, std::size_t limit, ListCompletion done) {
    if (user.empty())
      throw std::invalid_argument("notify: the user is empty");
    auto run = [this, user = std::move(user), unread_only, limit,
                done = std::move(done)](std::exception_ptr refused) {
      Inbox inbox;
      if (!refused) {
        try {
          inbox.notifications = store_->list(user, unread_only, limit);
          inbox.unread_count = store_->unread_count(user);
        } catch (...) {
          refused = std::current_exception();
        }
      }
      complete(done, std::move(refused), std::move(inbox));
    };
    if (!store_->may_block()) {
      run(nullptr);
      return;
    }
    enqueue(QueuedRead{std::move(run)});
  }

  // The read-state changes of queued calls (all QueuedMark), made in one store call
  // (Store::mark_many: one SQLite commit, one Redis transaction), each call completed with
  // its own result. A store error fails them all, as it does a batch of publishes.
  void run_marks(std::vector<QueuedCall>& calls) {
    std::vector<MarkQuery> marks;
    marks.reserve(calls.size());
    for (auto& call : calls) {
      auto& mark = std::get<QueuedMark>(call);
      marks.push_back(MarkQuery{std::move(mark.user), std::move(mark.id)});
    }
    std::vector<ReadResult> results;
    std::exception_ptr error;
    try {
      const auto sequence = sequence_lock();
      throw_if_stopped();
      results = store_->mark_many(marks);
      check_answer_count(results.size(), marks.size());
      mark_batches_.fetch_add(1, std::memory_order_relaxed);
      for (std::size_t i = 0; i < marks.size(); ++i)
        send_read_sync(marks[i].user, results[i]);
    } catch (...) {
      error = std::current_exception();
    }
    // As in publish_batch(), the last failed call takes this thread's reference to the error.
    for (std::size_t c = 0; c < calls.size(); ++c) {
      auto& done = std::get<QueuedMark>(calls[c]).done;
      if (error)
        complete(done, c + 1 == calls.size() ? std::move(error) : error, ReadResult{});
      else
        complete(done, nullptr, std::move(results[c]));
    }
  }

  // The read-state change of `call`, completed with its result or error.
  void run_mark(QueuedMark& call) {
    std::exception_ptr error;
    ReadResult result;
    try {
      result = mark_locked(call.user, call.id, sequence_lock());
    } catch (...) {
      error = std::current_exception();
    }
    complete(call.done, std::move(error), std::move(result));
  }

  // Who waits for a queued call: a completion handler, or the thread that made the call.
  enum class Waiting { handler, caller };

  void enqueue(QueuedCall call, Waiting waiting = Waiting::handler) {
    std::optional<errc> refused;
    {
      std::lock_guard lock(store_queue_mutex_);
      if (stopped_.load(std::memory_order_acquire)) {  // set before the thread is stopped
        refused = errc::hub_stopped;
      } else if (waiting == Waiting::handler &&
                 store_queue_.size() >= options_.max_pending_publishes) {
        refused = errc::too_many_pending_publishes;
      } else {
        start_store_thread_locked();
        store_queue_.push_back(std::move(call));
      }
    }
    if (!refused) {
      store_queue_ready_.notify_one();
      return;
    }
    auto error = std::make_exception_ptr(std::system_error(*refused, "notify: publish"));
    if (auto* publish = std::get_if<QueuedPublish>(&call))
      complete(publish->done, std::move(error), nullptr, std::size_t{0});
    else if (auto* mark = std::get_if<QueuedMark>(&call))
      complete(mark->done, std::move(error), ReadResult{});
    else
      complete(std::get<QueuedRead>(call).run, std::move(error));
  }

  // Started before a call is queued: if it cannot be, the caller throws and leaves nothing
  // queued that no thread would run. It keeps the hub alive: stop() called on it (from an
  // error handler, say) lets it finish on its own instead of joining.
  void start_store_thread_locked() {
    if (!store_thread_.joinable())
      store_thread_ = std::thread([self = shared_from_this()] { self->run_store_thread(); });
  }

  // Asks the store thread for a turn of the repair task. Never refused while the hub runs
  // (past max_pending_publishes too: a refused turn would never come again); once it has
  // stopped the turn is dropped, as stop() closed every connection. Throws what starting
  // the thread throws.
  void request_repair_turn() {
    {
      std::lock_guard lock(store_queue_mutex_);
      if (stopped_.load(std::memory_order_acquire))
        return;
      start_store_thread_locked();
      repair_turn_requested_ = true;
    }
    store_queue_ready_.notify_one();
  }

  // The store thread: takes every publish queued before the next call of another kind (up
  // to max_publish_batch drafts) at once, so that publishes arriving while the store writes
  // one batch make up the next; read-state changes queued one after another likewise make
  // one batch (one Store::mark_many call). An async_list() is a batch of its own.
  // A requested turn of the repair task comes after at most one batch from the queue: a
  // connection's first read (or its repair) does not wait behind every queued publish, and
  // it needs no place among them, as the sink was registered before it reads.
  void run_store_thread() {
    std::vector<QueuedCall> batch;
    bool repairs_next = true;  // whether a requested repair turn goes before the queue
    for (;;) {
      bool repair_turn = false;
      {
        std::unique_lock lock(store_queue_mutex_);
        store_thread_has_calls_ = false;  // the last batch, if any, has completed
        store_queue_ready_.wait(lock, [this] {
          return store_thread_stopping_ || repair_turn_requested_ || !store_queue_.empty();
        });
        if (repair_turn_requested_ && (repairs_next || store_queue_.empty())) {
          repair_turn_requested_ = false;
          repair_turn = true;
        } else if (store_queue_.empty()) {
          return;  // stopping, and every queued call has completed
        } else {
          take_batch_locked(batch);
          store_thread_has_calls_ = true;
        }
        repairs_next = !repair_turn;
      }
      const auto start = Clock::now();
      if (repair_turn)
        run_repairs();
      else if (std::holds_alternative<QueuedMark>(batch.front()))
        run_marks(batch);
      else if (auto* read = std::get_if<QueuedRead>(&batch.front()))
        complete(read->run, nullptr);
      else
        publish_batch(batch);
      batch.clear();
      add_busy_time(start);
    }
  }

  // Moves the next batch from the queue (not empty) into `batch`.
  void take_batch_locked(std::vector<QueuedCall>& batch) {
    std::size_t calls = 1;  // a read alone, or the publishes (read-state changes) that follow
    if (const auto* first = std::get_if<QueuedPublish>(&store_queue_.front())) {
      std::size_t drafts = first->drafts.size();
      for (; calls < store_queue_.size(); ++calls) {
        const auto* next = std::get_if<QueuedPublish>(&store_queue_[calls]);
        if (!next || drafts + next->drafts.size() > max_publish_batch)
          break;
        drafts += next->drafts.size();
      }
    } else if (std::holds_alternative<QueuedMark>(store_queue_.front())) {
      while (calls < store_queue_.size() && calls < max_publish_batch &&
             std::holds_alternative<QueuedMark>(store_queue_[calls]))
        ++calls;
    }
    if (calls == store_queue_.size()) {
      batch.swap(store_queue_);  // the queue keeps the batch's old capacity
    } else {
      const auto end = store_queue_.begin() + static_cast<std::ptrdiff_t>(calls);
      batch.assign(std::make_move_iterator(store_queue_.begin()), std::make_move_iterator(end));
      store_queue_.erase(store_queue_.begin(), end);
    }
  }

  void add_busy_time(Clock::time_point start) {
    store_thread_busy_us_.fetch_add(
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()),
        std::memory_order_relaxed);
  }

  // store_and_send() for the drafts of queued calls, each call completed with its own
  // outcome. After a stop, every one completes with errc::hub_stopped.
  void publish_batch(std::vector<QueuedCall>& calls) {
    std::vector<Notification> drafts;
    for (auto& call : calls) {
      auto& publish = std::get<QueuedPublish>(call);
      std::move(publish.drafts.begin(), publish.drafts.end(), std::back_inserter(drafts));
    }
    SentBatch sent;
    std::exception_ptr error;
    try {
      sent = store_and_send(std::move(drafts), sequence_lock());
      publish_batches_.fetch_add(1, std::memory_order_relaxed);
    } catch (...) {
      error = std::current_exception();
    }
    // A store error fails every call. A bus error fails each call with a draft it did not
    // send (stored, not sent), as publish_to() fails as a whole; the others were sent.
    if (sent.ec)
      error = std::make_exception_ptr(std::system_error(sent.ec, "notify: publish"));
    // The last failed call (the one with the last unsent draft, or the last call) takes this
    // thread's reference to the exception, so that none stays here: its count lives in the
    // uninstrumented C++ runtime, and a release here after the handler's on its thread reads
    // to ThreadSanitizer as a race on the exception's message.
    using Positions = std::vector<std::size_t>;
    std::size_t first = 0;
    auto next_reused = sent.reused.cbegin();
    auto next_unsent = sent.unsent.cbegin();
    for (std::size_t c = 0; c < calls.size(); ++c) {
      auto& publish = std::get<QueuedPublish>(calls[c]);
      const std::size_t end = first + publish.drafts.size();  // moved from, still counted
      // Moves `next` past the positions (ascending) of this call's drafts; returns the first.
      const auto pass = [end](Positions::const_iterator& next, const Positions& positions) {
        const auto from = next;
        while (next != positions.end() && *next < end)
          ++next;
        return from;
      };
      const auto unsent = pass(next_unsent, sent.unsent);
      const auto reused = pass(next_reused, sent.reused);
      if (error && (!sent.ec || unsent != next_unsent)) {
        const bool last = sent.ec ? next_unsent == sent.unsent.end() : c + 1 == calls.size();
        complete(publish.done, last ? std::move(error) : error, nullptr, 0);
      } else if (reused != next_reused) {
        // This call alone fails: the others of the batch were stored and sent.
        complete(publish.done, key_reused_error(sent.ids[*reused]), nullptr, 0);
      } else {
        complete(publish.done, nullptr, sent.ids.data() + first, end - first);
      }
      first = end;
    }
  }

  // `done` posts the caller's handler; it can fail only to allocate.
  template <typename Completion, typename... Results>
  void complete(const Completion& done, std::exception_ptr error, Results&&... results) {
    try {
      done(std::move(error), std::forward<Results>(results)...);
    } catch (...) {
      report(fmt::format("async call: completion not delivered: {}", current_exception_text()));
    }
  }

  // Lets the store thread complete what is queued (with errc::hub_stopped once stopped_
  // is set) and joins it.
  void stop_store_thread() {
    std::thread thread;
    {
      std::lock_guard lock(store_queue_mutex_);
      store_thread_stopping_ = true;
      thread = std::move(store_thread_);
    }
    store_queue_ready_.notify_all();
    if (!thread.joinable())
      return;
    if (thread.get_id() == std::this_thread::get_id())
      thread.detach();  // stop() from a part called on the store thread: it ends on its own
    else
      thread.join();
  }

  void throw_if_stopped() const {
    if (stopped_.load(std::memory_order_acquire))
      throw std::system_error(errc::hub_stopped);
  }

  // validate() with the hub's limits, and a key only for a store that keeps keys.
  void check_draft(const Notification& draft) const {
    validate(draft, options_.validation);
    if (!draft.idempotency_key.empty() && !store_->keeps_idempotency_keys())
      throw std::invalid_argument(
          "notify: a draft has an idempotency key, and the hub's store does not keep keys");
  }

  // Under sequence_lock(), after the store: hands a stored notification to the bus (unless
  // the store published it itself) and returns its id. `ec`, clear on entry, says the bus
  // refused it; it is stored all the same, and reaches clients when they resume or are
  // repaired. A replay (an idempotency key seen before) is not sent again: the first
  // publish was, and it carries an id the clients are past.
  std::string hand_to_bus(Notification stored, std::error_code& ec) {
    if (stored.replayed) {
      publish_replays_.fetch_add(1, std::memory_order_relaxed);
      return std::move(stored.id);
    }
    if (!store_->publishes_appends())
      bus_->publish(Envelope{stored.user_id, stored.broadcast, notification_event(stored)}, ec);
    if (!ec)
      publishes_.fetch_add(1, std::memory_order_relaxed);
    return std::move(stored.id);
  }

  // mark_read() (with `id`) or mark_all_read(): in the call, or queued and waited for (see
  // lock_for_call()).
  ReadResult mark(std::string_view user, std::optional<std::string_view> id) {
    if (user.empty())
      throw std::invalid_argument("notify: the user is empty");
    throw_if_stopped();
    if (auto lock = lock_for_call())
      return mark_locked(user, id, std::move(*lock));
    auto wait = std::make_shared<CallerWait<ReadResult>>();
    enqueue(QueuedMark{std::string(user), id ? std::optional<std::string>(*id) : std::nullopt,
                       [wait](std::exception_ptr error, ReadResult result) {
                         wait->complete(std::move(error), std::move(result));
                       }},
            Waiting::caller);
    return wait->wait();
  }

  ReadResult mark_locked(std::string_view user, std::optional<std::string_view> id,
                         [[maybe_unused]] std::unique_lock<std::mutex> sequence) {
    throw_if_stopped();
    auto result = id ? store_->mark_read(user, *id) : store_->mark_all_read(user);
    send_read_sync(user, result);
    return result;
  }

  // Under sequence_lock(), after the store: the `notification:read` event of a change that
  // changed something, on the bus (unless the store published it itself). A bus that
  // refuses it is reported; the change stands.
  void send_read_sync(std::string_view user, const ReadResult& result) {
    if (result.ids.empty() || store_->publishes_appends())
      return;
    nlohmann::json data{{"ids", result.ids}, {"unreadCount", result.unread_count}};
    auto event = Event::message(std::string(event_type::read), {}, data.dump(), result.seq);
    std::error_code ec;
    bus_->publish(Envelope{std::string(user), false, std::move(event)}, ec);
    if (ec)
      report(fmt::format("bus: read sync for '{}' not sent: {}", user, ec.message()));
  }

  // Held across a store write and its bus publish, so that the bus carries them in sequence
  // order. A store that publishes its own writes does both in one step, ordered by the store
  // (RedisStore: one script on Redis), and is safe to call concurrently: holding the lock
  // across its round trip would only make this instance write one at a time.
  std::unique_lock<std::mutex> sequence_lock() {
    if (store_->publishes_appends())
      return {};
    return std::unique_lock(sequence_mutex_);
  }

  // --- bus → local connections ------------------------------------------------------

  void on_bus_message(const Envelope& envelope) override {
    try {
      std::lock_guard lock(delivery_mutex_);
      const auto& event = envelope.event;
      if (!envelope.broadcast && event->type() == event_type::session_end) {
        end_local_sessions(envelope.user, reason_of_session_end(*event), envelope.replayed_sent_at);
        return;
      }
      if (envelope.broadcast) {
        flush_all_batches_locked();
        deliver_all(event);
        return;
      }
      if (options_.batch_window.count() > 0 && event->type() == event_type::notification) {
        if (has_local(envelope.user))
          add_to_batch_locked(envelope.user, event);
        return;
      }
      flush_batch_locked(envelope.user);
      deliver_user(envelope.user, event);
    } catch (...) {
      report(fmt::format("delivery failed: {}", current_exception_text()));
    }
  }

  void on_bus_state(BusState) override {}

  // The reason a session:end event from the bus carries (a bus may carry an event from an
  // older or foreign sender: an unreadable reason becomes "ended").
  static std::string reason_of_session_end(const Event& event) {
    const auto data = nlohmann::json::parse(event.data(), nullptr, false);
    if (data.is_object() && data.contains("reason") && data["reason"].is_string() &&
        Sink::is_valid_session_end_reason(data["reason"].get_ref<const std::string&>()))
      return data["reason"].get<std::string>();
    return "ended";
  }

  // Every connection of `user` on this instance ends (end_sessions(), from here or the bus),
  // or, for an end the bus replays, those attached before it was sent.
  void end_local_sessions(
      const std::string& user, std::string_view reason,
      std::optional<std::chrono::system_clock::time_point> sent_at = std::nullopt) {
    std::vector<std::shared_ptr<Sink>> sinks;
    {
      std::shared_lock lock(registry_mutex_);
      if (auto it = by_user_.find(user); it != by_user_.end())
        sinks = it->second;
    }
    for (const auto& sink : sinks)
      if (!sent_at || sink->attached_at() < *sent_at)
        sink->end_session(reason);
  }

  // --- gap repair -------------------------------------------------------------------

  // A user's first connection on this instance, waiting for the bus to confirm the user's
  // subscription before its first prime (HubOptions::subscription_wait).
  struct AwaitingPrime {
    std::shared_ptr<Sink> sink;
    std::string resume_from;
    Clock::time_point since;
  };

  // Every subscription is active again: the connections waiting for theirs get their first
  // prime, the others a repair.
  void on_bus_recovered() override {
    std::vector<AwaitingPrime> firsts;
    std::vector<std::shared_ptr<Sink>> sinks;
    {
      std::unique_lock lock(registry_mutex_);
      for (auto& [user, waiting] : awaiting_subscription_)
        std::move(waiting.begin(), waiting.end(), std::back_inserter(firsts));
      awaiting_subscription_.clear();
      sinks = all_;
    }
    drop_awaiting(sinks, firsts);
    queue_first_primes(std::move(firsts));
    queue_repairs(std::move(sinks), true);
  }

  void on_bus_subscribed(std::string_view user) override {
    std::vector<AwaitingPrime> firsts;
    std::vector<std::shared_ptr<Sink>> sinks;
    {
      std::unique_lock lock(registry_mutex_);
      const std::string key(user);
      if (auto a = awaiting_subscription_.find(key); a != awaiting_subscription_.end()) {
        firsts = std::move(a->second);
        awaiting_subscription_.erase(a);
      }
      auto it = by_user_.find(key);
      if (it != by_user_.end())
        sinks = it->second;
    }
    drop_awaiting(sinks, firsts);
    queue_first_primes(std::move(firsts));
    queue_repairs(std::move(sinks), false);
  }

  // Removes from `sinks` those in `firsts`: they are primed, not repaired.
  static void drop_awaiting(std::vector<std::shared_ptr<Sink>>& sinks,
                            const std::vector<AwaitingPrime>& firsts) {
    if (firsts.empty())
      return;
    std::unordered_set<const Sink*> waiting;
    for (const auto& f : firsts)
      waiting.insert(f.sink.get());
    sinks.erase(std::remove_if(sinks.begin(), sinks.end(),
                               [&](const auto& sink) { return waiting.count(sink.get()) != 0; }),
                sinks.end());
  }

  void on_sink_repair(const std::shared_ptr<Sink>& sink) override { queue_repairs({sink}, false); }

  // A repair brings a connection up to date from the store: the notifications after the
  // last one it was sent, then the authoritative unread count when it may have changed
  // unseen (a notification or a read change of the user's after that position); a reset
  // when that is not possible. `after_outage`: the count follows anyway, as after an outage
  // a store that does not keep Resume::last_read cannot say whether reads were missed.
  struct PendingRepair {
    std::shared_ptr<Sink> sink;
    bool after_outage = false;
    // Set for a connection's first prime, deferred until its user's subscription was active:
    // the cursor it asked to resume from (empty for none).
    std::optional<std::string> first_prime_from;
    // Set for a connection whose queue overflowed (OverflowPolicy::resync), held for its
    // reset: a `notifications:reset` with a fresh snapshot.
    bool reset = false;
  };

  // Connections per store call (Store::resume_many): a pass over thousands of connections
  // costs one round trip per batch, and the executor runs other work between batches. A
  // request waits for up to one batch at each of its handler steps; with Redis a batch of 16
  // took 1-3 ms in bench/repair-pass, and batches of 64 made the pass no faster (the
  // scripts, not the round trips, are most of it) while requests waited up to 60 ms.
  static constexpr std::size_t repair_batch = 16;

  // Holds each sink now, so that no live event reaches it before its repair has read the
  // store, and queues it for the repair task on the strand. A sink being primed right now
  // is repaired once that is done instead: the store read it is primed from may predate
  // what this repair is about.
  void queue_repairs(std::vector<std::shared_ptr<Sink>> sinks, bool after_outage) {
    std::vector<PendingRepair> held;
    held.reserve(sinks.size());
    for (auto& sink : sinks) {
      if (sink->hold())
        held.push_back({std::move(sink), after_outage, std::nullopt});
      else
        sink->repair_after_prime();
    }
    enqueue_repairs(std::move(held));
  }

  // Queues the first primes of connections that waited for their user's subscription; they
  // hold live events since they were attached.
  void queue_first_primes(std::vector<AwaitingPrime> firsts) {
    std::vector<PendingRepair> items;
    items.reserve(firsts.size());
    for (auto& f : firsts)
      items.push_back({std::move(f.sink), false, std::move(f.resume_from)});
    enqueue_repairs(std::move(items));
  }

  void enqueue_repairs(std::vector<PendingRepair> items) {
    if (items.empty())
      return;
    {
      std::lock_guard lock(repair_mutex_);
      repairs_queued_.insert(repairs_queued_.end(), std::make_move_iterator(items.begin()),
                             std::make_move_iterator(items.end()));
      if (std::exchange(repair_task_posted_, true))
        return;
    }
    post_repairs();
  }

  // The repair task runs where the store may be read without holding up an io thread: on
  // the store thread when the store may block (its turns alternate with the queue's
  // batches), else on strand_. When the thread cannot start, the strand serves.
  void post_repairs() {
    if (store_->may_block()) {
      try {
        request_repair_turn();
        return;
      } catch (const std::exception& e) {
        report(fmt::format("store thread: {}; repairing on the hub's executor", e.what()));
      }
    }
    asio::post(strand_, [weak = weak_from_this()] {
      if (auto self = weak.lock())
        self->run_repairs();
    });
  }

  // One batch, then posts itself again while more are queued.
  void run_repairs() {
    std::vector<PendingRepair> batch;
    {
      std::lock_guard lock(repair_mutex_);
      const auto n = std::min(repair_batch, repairs_queued_.size());
      batch.assign(std::make_move_iterator(repairs_queued_.begin()),
                   std::make_move_iterator(repairs_queued_.begin() + n));
      repairs_queued_.erase(repairs_queued_.begin(), repairs_queued_.begin() + n);
    }
    if (!stopped_.load(std::memory_order_acquire)) {  // else stop() has closed them
      try {
        repair(std::move(batch));
      } catch (...) {  // out of memory: the task goes on, or every later read would wait
        report(fmt::format("a repair pass failed: {}", current_exception_text()));
      }
    }
    {
      std::lock_guard lock(repair_mutex_);
      if (repairs_queued_.empty()) {
        repair_task_posted_ = false;
        return;
      }
    }
    post_repairs();
  }

  void repair(std::vector<PendingRepair> all) {
    std::vector<PendingRepair> firsts, resets, batch;
    for (auto& r : all)
      (r.first_prime_from ? firsts : r.reset ? resets : batch).push_back(std::move(r));
    if (!firsts.empty())
      prime_waiting(firsts);
    if (!resets.empty())
      reset_held(resets);
    if (!batch.empty())
      repair_held(batch);
  }

  // What a connection is primed or repaired from: the store's answer from its cursor, or a
  // snapshot when it has none or the store refused it.
  struct StoreQuery {
    std::string user;
    std::optional<std::uint64_t> cursor;
  };
  struct StoreRead {
    std::optional<Resume> resumed;
    Snapshot snapshot;  // when not resumed
  };

  // One read per query: at most two store calls for all of them (resume_many with
  // `resume_limit`, then snapshot_many for the rest), which a store may pipeline. Throws
  // what the store throws.
  std::vector<StoreRead> read_store(const std::vector<StoreQuery>& queries,
                                    std::size_t resume_limit) {
    std::vector<StoreRead> reads(queries.size());
    std::vector<ResumeQuery> resumes;
    std::vector<std::size_t> resume_of;  // the query each resume answers
    for (std::size_t i = 0; i < queries.size(); ++i) {
      if (queries[i].cursor) {
        resume_of.push_back(i);
        resumes.push_back({queries[i].user, *queries[i].cursor});
      }
    }
    if (!resumes.empty()) {
      auto answers = store_->resume_many(resumes, resume_limit, options_.max_replay);
      check_answer_count(answers.size(), resumes.size());
      for (std::size_t k = 0; k < answers.size(); ++k) {
        if (answers[k] && !fits_prime(answers[k]->missed))
          continue;  // a reset, as for a replay longer than max_replay
        reads[resume_of[k]].resumed = std::move(answers[k]);
      }
    }
    std::vector<std::string> users;
    std::vector<std::size_t> snapshot_of;
    for (std::size_t i = 0; i < queries.size(); ++i) {
      if (!reads[i].resumed) {
        snapshot_of.push_back(i);
        users.push_back(queries[i].user);
      }
    }
    if (!users.empty()) {
      auto snapshots = store_->snapshot_many(users, options_.snapshot_limit);
      check_answer_count(snapshots.size(), users.size());
      for (std::size_t k = 0; k < snapshots.size(); ++k)
        reads[snapshot_of[k]].snapshot = std::move(snapshots[k]);
    }
    return reads;
  }

  // Whether a replay of `missed` stays within max_prime_bytes, counting each notification's
  // text fields and data as they are before escaping (the replay's events are at least that).
  bool fits_prime(const std::vector<Notification>& missed) const {
    std::size_t bytes = 0;
    for (const auto& n : missed) {
      for (const std::string* field :
           {&n.id, &n.user_id, &n.type, &n.title, &n.body, &n.actor_id, &n.entity_type,
            &n.entity_id, &n.action_url, &n.image_url, &n.read_at, &n.created_at})
        bytes += field->size();
      if (!n.data.is_null())
        bytes += n.data.dump().size();
      if (bytes > options_.max_prime_bytes)
        return false;
    }
    return true;
  }

  static void check_answer_count(std::size_t answered, std::size_t asked) {
    if (answered != asked)
      throw std::runtime_error(fmt::format("the store answered {} of {} queries", answered, asked));
  }

  // read_store() for a batch of queued connections. When it fails, closes them all (their
  // clients reconnect and resume from their last event) and returns nothing.
  std::optional<std::vector<StoreRead>> read_store_or_close(const std::vector<PendingRepair>& batch,
                                                            const std::vector<StoreQuery>& queries,
                                                            std::size_t resume_limit,
                                                            std::string_view what) {
    try {
      return read_store(queries, resume_limit);
    } catch (...) {
      report(fmt::format("{} of {} connections failed: {}", what, batch.size(),
                         current_exception_text()));
      for (const auto& r : batch)
        r.sink->close(errc::store_unavailable);
      return std::nullopt;
    }
  }

  // Runs `prime`, which primes `sink`; when it throws, closes that connection alone.
  template <typename Prime>
  void prime_or_close(const std::shared_ptr<Sink>& sink, std::string_view what, Prime&& prime) {
    try {
      prime();
    } catch (...) {
      report(fmt::format("{} for '{}' failed: {}", what, sink->user(), current_exception_text()));
      sink->close(errc::store_unavailable);
    }
  }

  // What the exception being handled says; a store may throw anything.
  static std::string current_exception_text() {
    try {
      throw;
    } catch (const std::exception& e) {
      return e.what();
    } catch (...) {
      return "an exception not derived from std::exception";
    }
  }

  // The first prime of connections that waited for their subscription, as prime_new()
  // does it, one read for the batch.
  void prime_waiting(const std::vector<PendingRepair>& batch) {
    std::vector<StoreQuery> queries;
    queries.reserve(batch.size());
    for (const auto& r : batch)
      queries.push_back({r.sink->user(), parse_sequence(*r.first_prime_from)});
    const auto reads = read_store_or_close(batch, queries, options_.snapshot_limit, "priming");
    if (!reads)
      return;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& r = batch[i];
      prime_or_close(r.sink, "priming",
                     [&] { prime_from(*r.sink, (*reads)[i], !r.first_prime_from->empty()); });
    }
  }

  void repair_held(const std::vector<PendingRepair>& batch) {
    std::vector<StoreQuery> queries;
    queries.reserve(batch.size());
    for (const auto& r : batch)
      queries.push_back({r.sink->user(), r.sink->last_seq()});
    // Limit 0: the repair sends the count, never the snapshot's list.
    const auto reads = read_store_or_close(batch, queries, 0, "gap repair");
    if (!reads)
      return;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& read = (*reads)[i];
      prime_or_close(batch[i].sink, "gap repair", [&] {
        if (read.resumed) {
          finish_repair(batch[i], *queries[i].cursor, *read.resumed);
        } else {  // the store no longer knows its position
          batch[i].sink->prime({snapshot_event(event_type::reset, read.snapshot)},
                               read.snapshot.cursor);
          repairs_.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
  }

  void finish_repair(const PendingRepair& r, std::uint64_t from, const Resume& resumed) {
    std::vector<EventPtr> events;
    // The unread count at resumed.head, from the same read as the cursor: a count read
    // later would already include notifications that still arrive live after the prime.
    std::uint64_t unread = resumed.snapshot.unread_count;
    for (const auto& n : resumed.missed) {
      events.push_back(notification_event(n));
      if (!n.is_read())
        ++unread;
    }
    if (r.after_outage || !resumed.missed.empty() || resumed.last_read > from) {
      nlohmann::json count{{"ids", nlohmann::json::array()}, {"unreadCount", unread}};
      events.push_back(Event::message(std::string(event_type::read), {}, count.dump(), 0));
      repairs_.fetch_add(1, std::memory_order_relaxed);
    }
    r.sink->prime(std::move(events), resumed.head);
  }

  bool has_local(const std::string& user) const {
    std::shared_lock lock(registry_mutex_);
    return by_user_.count(user) != 0;
  }

  void deliver_user(const std::string& user, const EventPtr& event) {
    std::shared_lock lock(registry_mutex_);
    auto it = by_user_.find(user);
    if (it == by_user_.end())
      return;
    for (const auto& sink : it->second)
      sink->send(event);
  }

  void deliver_all(const EventPtr& event) {
    std::shared_lock lock(registry_mutex_);
    detail::FlushLane::Batch lane_kicks;  // before the loop: handed over on any way out
    const auto count = all_.size();
    for (std::size_t i = 0; i < count; ++i) {
      if (i + detail::prefetch_distance < count)  // each sink is cold by now: ask early
        all_[i + detail::prefetch_distance]->prefetch_queue();
      const auto& sink = all_[i];
      if (sink->offer(event) != Sink::Offer::queued_kick)
        continue;
      if (sink->lane_)
        lane_kicks.add(*sink->lane_, sink);
      else
        sink->kick();
    }
  }

  // --- batching -----------------------------------------------------------------------

  void add_to_batch_locked(const std::string& user, const EventPtr& event) {
    auto& batch = batches_[user];
    if (batch.events.empty()) {
      batch.deadline = Clock::now() + options_.batch_window;
      deadlines_.emplace_back(user, batch.deadline);
      if (!batch_timer_armed_) {
        batch_timer_armed_ = true;
        asio::post(strand_, [weak = weak_from_this(), deadline = batch.deadline] {
          if (auto self = weak.lock())
            self->arm_batch_timer(deadline);
        });
      }
    }
    batch.events.push_back(event);
  }

  void flush_batch_locked(const std::string& user) {
    auto it = batches_.find(user);
    if (it == batches_.end())
      return;
    auto events = std::move(it->second.events);
    batches_.erase(it);
    if (events.empty())
      return;
    EventPtr out = events.size() == 1 ? events.front() : Event::batch(std::move(events));
    deliver_user(user, out);
  }

  void flush_all_batches_locked() {
    while (!deadlines_.empty()) {
      auto user = std::move(deadlines_.front().first);
      deadlines_.pop_front();
      flush_batch_locked(user);
    }
    batches_.clear();
  }

  // Runs on strand_.
  void arm_batch_timer(Clock::time_point deadline) {
    batch_timer_.expires_at(deadline);
    batch_timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
      if (ec)
        return;
      if (auto self = weak.lock())
        self->on_batch_timer();
    });
  }

  void on_batch_timer() {
    std::optional<Clock::time_point> next;
    try {
      std::lock_guard lock(delivery_mutex_);
      const auto now = Clock::now();
      while (!deadlines_.empty()) {
        const auto& [user, deadline] = deadlines_.front();
        auto it = batches_.find(user);
        // Flushed early (by a read, a broadcast, an ephemeral event): its entry is stale, and
        // a batch the user opened since has an entry of its own further back. Waiting for
        // that one here would hold up every batch queued behind.
        if (it == batches_.end() || it->second.deadline != deadline) {
          deadlines_.pop_front();
          continue;
        }
        if (it->second.deadline > now) {
          next = it->second.deadline;
          break;
        }
        auto due = std::move(deadlines_.front().first);
        deadlines_.pop_front();
        flush_batch_locked(due);
      }
      batch_timer_armed_ = next.has_value();
    } catch (...) {
      report(fmt::format("batch flush failed: {}", current_exception_text()));
    }
    if (next)
      arm_batch_timer(*next);
  }

  // --- heartbeats -----------------------------------------------------------------

  void arm_timers() {
    asio::post(strand_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->repeat(self->heartbeat_timer_, self->options_.heartbeat_interval,
                     &Impl::sweep_heartbeats);
        self->repeat(self->session_timer_, self->options_.session_check_interval,
                     &Impl::end_due_sessions);
      }
    });
  }

  // Runs `sweep` every `interval` on `timer` (one of this hub's) until the hub stops.
  void repeat(asio::steady_timer& timer, std::chrono::milliseconds interval,
              void (Impl::*sweep)()) {
    if (stopped_.load(std::memory_order_acquire))
      return;
    timer.expires_after(interval);
    timer.async_wait([weak = weak_from_this(), &timer, interval, sweep](std::error_code ec) {
      if (ec)
        return;
      auto self = weak.lock();
      if (!self)
        return;  // (then `timer` is gone too: not touched)
      ((*self).*sweep)();
      self->repeat(timer, interval, sweep);
    });
  }

  // The sessions whose deadline (Sink::end_session_at) has passed.
  void end_due_sessions() {
    const auto now = Clock::now();
    std::vector<std::shared_ptr<Sink>> due;
    {
      std::shared_lock lock(registry_mutex_);
      for (const auto& sink : all_)
        if (sink->session_due(now))
          due.push_back(sink);
    }
    for (const auto& sink : due)
      sink->end_session("expired");
  }

  // (A session past its deadline is ended by end_due_sessions(), within a second.)
  void sweep_heartbeats() {
    // A sweep well past its time means this process was held up (a loaded machine, a pause):
    // a write that moved nothing meanwhile is no sign of a client that reads nothing.
    const auto now = Clock::now();
    const bool on_time = last_sweep_ == Clock::time_point() ||
                         now - last_sweep_ < options_.heartbeat_interval * 3 / 2;
    last_sweep_ = now;
    std::shared_lock lock(registry_mutex_);
    for (const auto& sink : all_)
      sink->heartbeat(on_time);
    heartbeats_.fetch_add(all_.size(), std::memory_order_relaxed);
  }

  // --- connections ----------------------------------------------------------------

  void attach(std::string user, std::shared_ptr<Sink> sink, std::string_view resume_from,
              std::error_code& ec) {
    if (user.empty())
      throw std::invalid_argument("notify: attach needs a user");
    if (!sink)
      throw std::invalid_argument("notify: attach needs a sink");
    ec.clear();
    // Asked before the registry lock: a bus may take locks of its own, and calls the hub
    // back under them.
    const bool may_wait = options_.subscription_wait.count() > 0 &&
                          bus_->subscriptions_confirmed_later() &&
                          bus_->state() == BusState::connected;
    bool first_of_user = false;
    bool deferred = false;
    bool arm_timer = false;
    {
      std::unique_lock lock(registry_mutex_);
      if (stopped_.load(std::memory_order_acquire)) {
        ec = errc::hub_stopped;
      } else if (is_registered_locked(*sink)) {
        ec = errc::already_attached;
      } else if (all_.size() >= options_.max_connections) {
        ec = errc::too_many_connections;
      } else if (auto it = by_user_.find(user);
                 it != by_user_.end() && it->second.size() >= options_.max_connections_per_user) {
        ec = errc::too_many_user_connections;
      }
      if (ec) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      try {
        ec = sink->bind(shared_from_this(), user, options_.queue);
      } catch (const std::logic_error&) {
        ec = errc::already_attached;
      }
      if (ec) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      auto& list = by_user_[user];
      list.push_back(sink);
      first_of_user = list.size() == 1;
      sink->registry_slot_ = all_.size();
      all_.push_back(sink);
      // Primed once the user's subscription is active, when the bus says so: then one store
      // read covers everything published before.
      auto awaiting = awaiting_subscription_.find(user);
      if (may_wait && (first_of_user || awaiting != awaiting_subscription_.end())) {
        // The first to wait starts the timer; while any wait, the timer runs for the earliest
        // (prime_unconfirmed). A later start only moves it to the right time again.
        arm_timer = awaiting_subscription_.empty();
        awaiting_subscription_[user].push_back({sink, std::string(resume_from), Clock::now()});
        deferred = true;
      }
    }
    opened_.fetch_add(1, std::memory_order_relaxed);
    (sink->protocol() == "websocket" ? open_websocket_ : open_sse_)
        .fetch_add(1, std::memory_order_relaxed);
    if (first_of_user)
      bus_->subscribe(user);
    if (deferred) {
      if (arm_timer)
        post_subscription_check(options_.subscription_wait);
      return;
    }
    if (store_->may_block()) {  // read on the store thread, as after a subscription wait
      enqueue_repairs({PendingRepair{std::move(sink), false, std::string(resume_from)}});
      return;
    }
    try {
      prime_new(user, *sink, resume_from);
    } catch (...) {
      // The store failed: the connection must not stay registered, holding events forever.
      sink->close(errc::connection_closed);
      unregister(sink);
      throw;
    }
  }

  void post_subscription_check(Clock::duration after) {
    asio::post(strand_, [weak = weak_from_this(), after] {
      auto self = weak.lock();
      if (!self || self->stopped_.load(std::memory_order_acquire))
        return;
      self->subscription_timer_.expires_after(after);
      self->subscription_timer_.async_wait([weak = self->weak_from_this()](std::error_code ec) {
        if (auto self = weak.lock(); self && !ec)
          self->prime_unconfirmed();
      });
    });
  }

  // Runs on strand_: connections that waited subscription_wait for their user's subscription
  // are primed anyway; if it is confirmed later, they are repaired then.
  void prime_unconfirmed() {
    std::vector<AwaitingPrime> late;
    std::optional<Clock::time_point> next;
    {
      std::unique_lock lock(registry_mutex_);
      const auto due = Clock::now() - options_.subscription_wait;
      for (auto a = awaiting_subscription_.begin(); a != awaiting_subscription_.end();) {
        auto& waiting = a->second;
        for (auto w = waiting.begin(); w != waiting.end();) {
          if (w->since <= due) {
            late.push_back(std::move(*w));
            w = waiting.erase(w);
          } else {
            next = std::min(next.value_or(w->since), w->since);
            ++w;
          }
        }
        a = waiting.empty() ? awaiting_subscription_.erase(a) : std::next(a);
      }
    }
    if (next)
      post_subscription_check(*next + options_.subscription_wait - Clock::now());
    if (late.empty())
      return;
    subscription_waits_expired_.fetch_add(late.size(), std::memory_order_relaxed);
    tell(fmt::format("{} connections waited {} ms for their bus subscription; primed without it",
                     late.size(), options_.subscription_wait.count()));
    queue_first_primes(std::move(late));
  }

  bool is_registered_locked(const Sink& sink) const {
    return sink.registry_slot_ < all_.size() && all_[sink.registry_slot_].get() == &sink;
  }

  void prime_new(const std::string& user, Sink& sink, std::string_view resume_from) {
    const auto reads = read_store({{user, parse_sequence(resume_from)}}, options_.snapshot_limit);
    prime_from(sink, reads.front(), !resume_from.empty());
  }

  // Primes a new connection from its read: `init` and what it missed after its cursor, or
  // `init` with the snapshot, a reset when it asked to resume and the store could not.
  void prime_from(Sink& sink, const StoreRead& read, bool asked_to_resume) {
    if (read.resumed) {
      sink.prime(first_events(*read.resumed), read.resumed->head);
      return;
    }
    sink.prime(first_events(read.snapshot, asked_to_resume), read.snapshot.cursor);
    if (asked_to_resume)
      resets_unknown_cursor_.fetch_add(1, std::memory_order_relaxed);
  }

  // What a new connection gets first: `init` and what it missed since its cursor, or
  // `init` (a reset when its cursor was refused) with a snapshot.
  std::vector<EventPtr> first_events(const Resume& resumed) const {
    std::vector<EventPtr> first;
    first.reserve(resumed.missed.size() + 1);
    first.push_back(snapshot_event(event_type::init, resumed.snapshot));
    for (const auto& n : resumed.missed)
      first.push_back(notification_event(n));
    return first;
  }
  std::vector<EventPtr> first_events(const Snapshot& snapshot, bool reset) const {
    std::vector<EventPtr> first;
    first.push_back(snapshot_event(reset ? event_type::reset : event_type::init, snapshot));
    return first;
  }

  void on_sink_resync(const std::shared_ptr<Sink>& sink) override {
    if (stopped_.load(std::memory_order_acquire)) {
      sink->close(errc::hub_stopped);
      return;
    }
    if (!sink->hold_for_reset())
      return;
    // A store that may block is read by the repair task, where the resets of connections that
    // overflowed together (a burst to many slow clients) share store calls; a MemoryStore here.
    if (store_->may_block()) {
      enqueue_repairs({PendingRepair{sink, false, std::nullopt, true}});
      return;
    }
    prime_or_close(sink, "resync", [&] {
      reset_from(*sink, store_->snapshot(sink->user(), options_.snapshot_limit));
    });
  }

  void reset_from(Sink& sink, const Snapshot& snapshot) {
    // Counted first: whoever reads the reset (on the sink's thread) finds it counted.
    resyncs_.fetch_add(1, std::memory_order_relaxed);
    sink.prime({snapshot_event(event_type::reset, snapshot)}, snapshot.cursor);
  }

  // The resets of connections held for them, one snapshot_many for the batch.
  void reset_held(const std::vector<PendingRepair>& batch) {
    std::vector<StoreQuery> queries;
    queries.reserve(batch.size());
    for (const auto& r : batch)
      queries.push_back({r.sink->user(), std::nullopt});
    const auto reads = read_store_or_close(batch, queries, options_.snapshot_limit, "resync");
    if (!reads)
      return;
    for (std::size_t i = 0; i < batch.size(); ++i)
      prime_or_close(batch[i].sink, "resync",
                     [&] { reset_from(*batch[i].sink, (*reads)[i].snapshot); });
  }

  void on_sink_closed(const std::shared_ptr<Sink>& sink, std::error_code reason) override {
    if (reason == errc::slow_consumer)
      slow_disconnects_.fetch_add(1, std::memory_order_relaxed);
    else if (reason == errc::session_ended)
      sessions_ended_.fetch_add(1, std::memory_order_relaxed);
    unregister(sink);
  }

  void unregister(const std::shared_ptr<Sink>& sink) {
    bool last_of_user = false;
    {
      std::unique_lock lock(registry_mutex_);
      if (!is_registered_locked(*sink))
        return;
      retired_events_ += sink->events_written();
      retired_bytes_ += sink->bytes_written();
      const auto i = sink->registry_slot_;
      (sink->protocol() == "websocket" ? open_websocket_ : open_sse_)
          .fetch_sub(1, std::memory_order_relaxed);
      if (i + 1 != all_.size()) {
        all_[i] = std::move(all_.back());
        all_[i]->registry_slot_ = i;
      }
      all_.pop_back();
      if (auto a = awaiting_subscription_.find(sink->user()); a != awaiting_subscription_.end()) {
        auto& waiting = a->second;
        waiting.erase(std::remove_if(waiting.begin(), waiting.end(),
                                     [&](const auto& w) { return w.sink == sink; }),
                      waiting.end());
        if (waiting.empty())
          awaiting_subscription_.erase(a);
      }
      auto it = by_user_.find(sink->user());
      if (it != by_user_.end()) {
        auto& list = it->second;
        list.erase(std::remove(list.begin(), list.end(), sink), list.end());
        if (list.empty()) {
          by_user_.erase(it);
          last_of_user = true;
        }
      }
    }
    if (last_of_user && !stopped_.load(std::memory_order_acquire)) {
      try {
        bus_->unsubscribe(sink->user());
      } catch (const std::exception& e) {
        report(fmt::format("bus unsubscribe failed: {}", e.what()));
      }
    }
  }

  // --- client messages --------------------------------------------------------------

  void on_client_message(const std::shared_ptr<Sink>& sink, std::string_view text) override {
    client_messages_.fetch_add(1, std::memory_order_relaxed);
    nlohmann::json ref;  // the message's "ref", echoed by an error that answers it
    auto error = [&](std::string_view message, std::string_view type = {}) {
      reply(sink, "error", error_data(message, type, ref));
    };
    auto body = nlohmann::json::parse(text, nullptr, false);
    if (body.is_discarded())
      return error("invalid JSON");
    if (!body.is_object())
      return error("a message must be a JSON object");
    ref = client_ref(body);
    // A handler may copy or dump the body, which recurses: refuse what could exhaust the stack.
    if (detail::shape_of(body, max_message_depth).depth > max_message_depth)
      return error(fmt::format("a message must not nest deeper than {} levels", max_message_depth));
    auto type_it = body.find("type");
    if (type_it == body.end() || !type_it->is_string())
      return error("a message needs a string \"type\"");
    const std::string type = *type_it;
    try {
      if (type == event_type::read) {
        auto id = body.find("id");
        if (id == body.end() || !id->is_string())
          return error("id: missing", type);
        return mark_for_client(sink, type, ref, id->get<std::string>());
      }
      if (type == "notifications:read_all")
        return mark_for_client(sink, type, ref, std::nullopt);
      MessageHandler handler;
      {
        std::shared_lock lock(handlers_mutex_);
        auto it = handlers_.find(type);
        if (it != handlers_.end())
          handler = it->second;
      }
      if (!handler)
        return error("unknown message type '" + type + "'", type);
      handler(ClientMessage{sink->user(), type, std::move(body), sink});
    } catch (...) {  // whatever a host's handler throws stays out of the host's io_context
      report(fmt::format("handler for '{}' failed: {}", type, current_exception_text()));
      error("the message could not be handled", type);
    }
  }

  static constexpr std::size_t max_message_depth = 64;

  // A WebSocket client's read receipt. Its result reaches the client as `notification:read`
  // through the bus; a failure is answered with an error. With a store that may block it goes
  // through the store thread, so that the connection's thread does not wait for the store.
  void mark_for_client(const std::shared_ptr<Sink>& sink, const std::string& type,
                       const nlohmann::json& ref, std::optional<std::string> id) {
    start_mark(sink->user(), std::move(id),
               [this, sink, type, ref](std::exception_ptr error, ReadResult) {
                 if (!error)
                   return;
                 try {
                   std::rethrow_exception(error);
                 } catch (const std::exception& e) {
                   report(fmt::format("handler for '{}' failed: {}", type, e.what()));
                 } catch (...) {
                   report(fmt::format("handler for '{}' failed", type));
                 }
                 reply(sink, "error", error_data("the message could not be handled", type, ref));
               });
  }

  // A client's "ref" for its message, when it is one the error may carry back: a string of
  // at most max_ref_bytes or an integer; null otherwise (ignored, not refused).
  static nlohmann::json client_ref(const nlohmann::json& body) {
    const auto it = body.find("ref");
    if (it == body.end())
      return nullptr;
    if (it->is_number_integer() ||
        (it->is_string() && it->get_ref<const std::string&>().size() <= max_ref_bytes))
      return *it;
    return nullptr;
  }

  static constexpr std::size_t max_ref_bytes = 128;

  // The data of an `error` answering a client's message of `type` (may be empty) and `ref`.
  static nlohmann::json error_data(std::string_view message, std::string_view type,
                                   const nlohmann::json& ref) {
    nlohmann::json data{{"message", message}};
    if (!type.empty())
      data["type"] = type;
    if (!ref.is_null())
      data["ref"] = ref;
    return data;
  }

  static void reply(const std::shared_ptr<Sink>& sink, std::string type,
                    const nlohmann::json& data) {
    if (!sink)
      throw std::invalid_argument("notify: reply needs a connection");
    check_host_type(type);
    sink->send_direct(Event::message(std::move(type), {}, host_json(data), 0));
  }

  void on_message(std::string type, MessageHandler handler) {
    if (type.empty() || !handler)
      throw std::invalid_argument("notify: on_message needs a type and a handler");
    if (type == event_type::read || type == "notifications:read_all")
      throw std::invalid_argument("notify: '" + type + "' is handled by the hub");
    std::unique_lock lock(handlers_mutex_);
    handlers_[std::move(type)] = std::move(handler);
  }

  static void check_host_type(const std::string& type) {
    if (event_type::is_reserved(type))
      throw std::invalid_argument("notify: '" + type + "' is an event type of the hub's own");
  }

  // The JSON text of a host's event data: std::invalid_argument for a string that is not
  // UTF-8 (nlohmann's dump() would throw its own type_error).
  static std::string host_json(const nlohmann::json& data) {
    try {
      return data.dump();
    } catch (const nlohmann::json::type_error& e) {
      throw std::invalid_argument(std::string("notify: the event's data: ") + e.what());
    }
  }

  void end_sessions(std::string_view user, std::string_view reason) {
    if (user.empty())
      throw std::invalid_argument("notify: end_sessions needs a user");
    auto event = Sink::session_end_event(reason);
    if (stopped_.load(std::memory_order_acquire))
      throw std::system_error(errc::hub_stopped);
    // This instance's connections end here, whatever the bus does: a bus that is away cannot
    // keep them open (RedisBus does not hand the end back, so that a session begun since is
    // not ended by the echo). The others get it as a broadcast, so that it also ends a
    // connection whose user's subscription is not active yet on its instance.
    std::string owner(user);
    end_local_sessions(owner, reason);
    std::error_code ec;
    bus_->publish(Envelope{std::move(owner), false, std::move(event), true}, ec);
    if (ec)
      throw std::system_error(ec, "notify: end_sessions");
  }

  void send_to(std::string_view user, std::string type, const nlohmann::json& data) {
    if (user.empty())
      throw std::invalid_argument("notify: send_to needs a user");
    check_host_type(type);
    if (stopped_.load(std::memory_order_acquire))
      throw std::system_error(errc::hub_stopped);
    auto event = Event::message(std::move(type), {}, host_json(data), 0);
    std::error_code ec;
    bus_->publish(Envelope{std::string(user), false, std::move(event)}, ec);
    if (ec)
      throw std::system_error(ec, "notify: send_to");
  }

  std::size_t connection_count() const {
    std::shared_lock lock(registry_mutex_);
    return all_.size();
  }

  std::size_t connection_count(std::string_view user) const {
    std::shared_lock lock(registry_mutex_);
    auto it = by_user_.find(std::string(user));
    return it == by_user_.end() ? 0 : it->second.size();
  }

  void stop() {
    if (stopped_.exchange(true, std::memory_order_acq_rel))
      return;
    asio::post(strand_, [self = shared_from_this()] {
      self->heartbeat_timer_.cancel();
      self->session_timer_.cancel();
      self->batch_timer_.cancel();
      self->subscription_timer_.cancel();
    });
    {
      std::lock_guard lock(delivery_mutex_);
      flush_all_batches_locked();
    }
    std::vector<std::shared_ptr<Sink>> sinks;
    {
      std::shared_lock lock(registry_mutex_);
      sinks = all_;
    }
    for (const auto& sink : sinks)
      sink->close(errc::hub_stopped);
    bus_->stop();
    stop_store_thread();
  }

  // --- metrics and errors -----------------------------------------------------------

  HubMetrics metrics() const {
    HubMetrics m;
    m.connections_sse = open_sse_.load(std::memory_order_relaxed);
    m.connections_websocket = open_websocket_.load(std::memory_order_relaxed);
    m.client_messages = client_messages_.load(std::memory_order_relaxed);
    m.gap_repairs = repairs_.load(std::memory_order_relaxed);
    m.connections_opened = opened_.load(std::memory_order_relaxed);
    // Each sink counts its own writes (no shared counter on the delivery path); the
    // counts of closed connections were added up when they left the registry.
    {
      std::shared_lock lock(registry_mutex_);
      m.events_delivered = retired_events_;
      m.bytes_delivered = retired_bytes_;
      for (const auto& sink : all_) {
        m.events_delivered += sink->events_written();
        m.bytes_delivered += sink->bytes_written();
      }
      for (const auto& [user, waiting] : awaiting_subscription_)
        m.connections_awaiting_subscription += waiting.size();
    }
    m.subscription_waits_expired = subscription_waits_expired_.load(std::memory_order_relaxed);
    {
      std::lock_guard lock(repair_mutex_);
      m.connections_awaiting_read = repairs_queued_.size();
    }
    {
      std::lock_guard lock(store_queue_mutex_);
      m.publishes_pending = store_queue_.size();
    }
    m.publish_batches = publish_batches_.load(std::memory_order_relaxed);
    m.mark_batches = mark_batches_.load(std::memory_order_relaxed);
    m.store_thread_busy_us = store_thread_busy_us_.load(std::memory_order_relaxed);
    m.publishes = publishes_.load(std::memory_order_relaxed);
    m.publish_replays = publish_replays_.load(std::memory_order_relaxed);
    m.resyncs = resyncs_.load(std::memory_order_relaxed);
    m.slow_consumer_disconnects = slow_disconnects_.load(std::memory_order_relaxed);
    m.sessions_ended = sessions_ended_.load(std::memory_order_relaxed);
    m.rejected_connections = rejected_.load(std::memory_order_relaxed);
    m.heartbeats = heartbeats_.load(std::memory_order_relaxed);
    m.resets_unknown_cursor = resets_unknown_cursor_.load(std::memory_order_relaxed);
    m.handler_errors = handler_errors_.load(std::memory_order_relaxed);
    switch (bus_->state()) {
      case BusState::connected:
        m.bus_state = "connected";
        break;
      case BusState::reconnecting:
        m.bus_state = "reconnecting";
        break;
      case BusState::stopped:
        m.bus_state = "stopped";
        break;
    }
    return m;
  }

  void set_error_handler(std::function<void(std::string_view)> handler) {
    std::lock_guard lock(error_mutex_);
    error_handler_ = std::move(handler);
  }

  void report(const std::string& what) noexcept {
    handler_errors_.fetch_add(1, std::memory_order_relaxed);
    tell(what);
  }

  // Hands `what` to the error handler (or stderr) without counting it as an error.
  void tell(const std::string& what) noexcept {
    try {
      std::function<void(std::string_view)> handler;
      {
        std::lock_guard lock(error_mutex_);
        handler = error_handler_;
      }
      if (handler)
        handler(what);
      else
        std::fprintf(stderr, "notify: %s\n", what.c_str());
    } catch (...) {
      // The error handler itself failed; there is nobody left to tell.
    }
  }

  // --- events -----------------------------------------------------------------------

  static EventPtr notification_event(const Notification& n) {
    const auto seq = parse_sequence(n.id).value_or(0);
    return Event::message(std::string(event_type::notification), n.id, to_json_text(n), seq);
  }

  // {"notifications":[...],"unreadCount":N}, written without a JSON tree.
  // The list stops before the first notification that would take it past max_prime_bytes.
  EventPtr snapshot_event(std::string_view type, const Snapshot& s) const {
    std::string data;
    data.reserve(64 + 320 * s.unread.size());
    data += R"({"notifications":[)";
    const std::size_t list_start = data.size();
    for (const auto& n : s.unread) {
      const std::size_t before = data.size();
      append_json(data, n);
      if (data.size() - list_start > options_.max_prime_bytes) {
        data.resize(before);
        break;
      }
      data += ',';
    }
    if (data.back() == ',')
      data.pop_back();
    data += R"(],"unreadCount":)";
    data += std::to_string(s.unread_count);
    // So that a client can tell a quiet connection from a dead one (heartbeat events).
    data += R"(,"heartbeatMs":)";
    data += std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.heartbeat_interval).count());
    data += '}';
    return Event::message(std::string(type), s.cursor ? std::to_string(s.cursor) : "",
                          std::move(data), 0);
  }

  asio::strand<asio::any_io_executor> strand_;
  HubOptions options_;
  std::shared_ptr<Store> store_;
  std::shared_ptr<Bus> bus_;
  std::atomic<bool> stopped_{false};

  // Calls for the store thread, oldest first.
  mutable std::mutex store_queue_mutex_;
  std::condition_variable store_queue_ready_;
  std::vector<QueuedCall> store_queue_;
  std::thread store_thread_;
  bool store_thread_stopping_ = false;
  bool repair_turn_requested_ = false;   // see request_repair_turn()
  bool store_thread_has_calls_ = false;  // calls taken from the queue, not all completed
  std::atomic<std::uint64_t> publish_batches_{0};
  std::atomic<std::uint64_t> mark_batches_{0};
  std::atomic<std::uint64_t> store_thread_busy_us_{0};

  std::mutex sequence_mutex_;  // a store write and its bus publish happen as one step (see
                               // sequence_lock())

  std::mutex delivery_mutex_;  // orders deliveries; guards the batches
  struct PendingBatch {
    std::vector<EventPtr> events;
    Clock::time_point deadline;
  };
  std::unordered_map<std::string, PendingBatch> batches_;
  // Users with the deadline of the batch they opened, in the order the windows opened.
  std::deque<std::pair<std::string, Clock::time_point>> deadlines_;
  bool batch_timer_armed_ = false;

  mutable std::shared_mutex registry_mutex_;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Sink>>> by_user_;
  std::vector<std::shared_ptr<Sink>> all_;

  asio::steady_timer heartbeat_timer_;
  Clock::time_point last_sweep_;      // on the strand: sweep_heartbeats()
  asio::steady_timer session_timer_;  // Sink::end_session_at's deadlines
  asio::steady_timer batch_timer_;
  asio::steady_timer subscription_timer_;

  // Guarded by registry_mutex_.
  std::unordered_map<std::string, std::vector<AwaitingPrime>> awaiting_subscription_;

  std::mutex error_mutex_;
  std::function<void(std::string_view)> error_handler_;

  std::uint64_t retired_events_ = 0;  // written to connections no longer registered
  std::uint64_t retired_bytes_ = 0;   // (both guarded by registry_mutex_)

  std::atomic<std::uint64_t> opened_{0}, publishes_{0}, resyncs_{0}, slow_disconnects_{0},
      rejected_{0}, heartbeats_{0}, sessions_ended_{0}, resets_unknown_cursor_{0},
      handler_errors_{0}, open_sse_{0}, open_websocket_{0}, client_messages_{0}, repairs_{0},
      subscription_waits_expired_{0}, publish_replays_{0};

  mutable std::mutex repair_mutex_;  // guards the two below
  std::deque<PendingRepair> repairs_queued_;
  bool repair_task_posted_ = false;

  std::shared_mutex handlers_mutex_;
  std::unordered_map<std::string, MessageHandler> handlers_;
};

// --- NotificationHub -----------------------------------------------------------------

NotificationHub::NotificationHub(asio::any_io_executor executor, HubOptions options,
                                 std::shared_ptr<Store> store, std::shared_ptr<Bus> bus)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options), std::move(store),
                                   std::move(bus))) {
  impl_->start();
}

NotificationHub::~NotificationHub() {
  try {
    impl_->stop();
  } catch (...) {
    // stop() only fails if a part throws on shutdown; a destructor must not.
  }
}

std::string NotificationHub::publish(Notification draft) {
  return impl_->publish_one(std::move(draft));
}

std::vector<std::string> NotificationHub::publish_to(const std::vector<std::string>& users,
                                                     Notification draft) {
  return impl_->publish_many(Impl::drafts_for(users, draft));
}

std::string NotificationHub::broadcast(Notification draft) {
  draft.broadcast = true;
  draft.user_id.clear();
  return impl_->publish_one(std::move(draft));
}

void NotificationHub::start_publish(Notification draft, PublishCompletion done) {
  impl_->start_publish(std::move(draft), std::move(done));
}

void NotificationHub::start_mark(std::string user, std::optional<std::string> id,
                                 MarkCompletion done) {
  impl_->start_mark(std::move(user), std::move(id), std::move(done));
}

void NotificationHub::start_list(std::string user, bool unread_only, std::size_t limit,
                                 ListCompletion done) {
  impl_->start_list(std::move(user), unread_only, limit, std::move(done));
}

void NotificationHub::start_publish_to(const std::vector<std::string>& users,
                                       const Notification& draft, PublishCompletion done) {
  impl_->start_publish_to(users, draft, std::move(done));
}

asio::any_io_executor NotificationHub::get_executor() const noexcept {
  return impl_->strand_.get_inner_executor();
}

void NotificationHub::attach(std::string user, std::shared_ptr<Sink> sink,
                             std::string_view resume_from) {
  std::error_code ec;
  attach(std::move(user), std::move(sink), resume_from, ec);
  if (ec)
    throw std::system_error(ec, "notify: attach");
}

void NotificationHub::attach(std::string user, std::shared_ptr<Sink> sink,
                             std::string_view resume_from, std::error_code& ec) {
  impl_->attach(std::move(user), std::move(sink), resume_from, ec);
}

std::size_t NotificationHub::connection_count() const {
  return impl_->connection_count();
}

std::size_t NotificationHub::connection_count(std::string_view user) const {
  return impl_->connection_count(user);
}

ReadResult NotificationHub::mark_read(std::string_view user, std::string_view id) {
  return impl_->mark(user, id);
}

ReadResult NotificationHub::mark_all_read(std::string_view user) {
  return impl_->mark(user, std::nullopt);
}

std::vector<Notification> NotificationHub::list(std::string_view user, bool unread_only,
                                                std::size_t limit) const {
  if (user.empty())
    throw std::invalid_argument("notify: the user is empty");
  return impl_->store_->list(user, unread_only, limit);
}

std::uint64_t NotificationHub::unread_count(std::string_view user) const {
  if (user.empty())
    throw std::invalid_argument("notify: the user is empty");
  return impl_->store_->unread_count(user);
}

void NotificationHub::on_message(std::string type, MessageHandler handler) {
  impl_->on_message(std::move(type), std::move(handler));
}

void NotificationHub::send_to(std::string_view user, std::string type, const nlohmann::json& data) {
  impl_->send_to(user, std::move(type), data);
}

void NotificationHub::end_sessions(std::string_view user, std::string_view reason) {
  impl_->end_sessions(user, reason);
}

void NotificationHub::reply(const std::shared_ptr<Sink>& connection, std::string type,
                            const nlohmann::json& data) {
  Impl::reply(connection, std::move(type), data);
}

void NotificationHub::reply_error(const ClientMessage& message, std::string_view why) {
  Impl::reply(message.connection, "error",
              Impl::error_data(why, message.type, Impl::client_ref(message.body)));
}

void NotificationHub::stop() {
  impl_->stop();
}

HubMetrics NotificationHub::metrics() const {
  return impl_->metrics();
}

std::string NotificationHub::metrics_text() const {
  return render_prometheus(impl_->metrics(), impl_->bus_->name());
}

void NotificationHub::set_error_handler(std::function<void(std::string_view)> handler) {
  impl_->set_error_handler(std::move(handler));
}

const HubOptions& NotificationHub::options() const noexcept {
  return impl_->options_;
}
Store& NotificationHub::store() const noexcept {
  return *impl_->store_;
}
Bus& NotificationHub::bus() const noexcept {
  return *impl_->bus_;
}

}  // namespace notify
