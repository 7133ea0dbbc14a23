#include "checkpointer.hpp"

namespace notify::sqlite {

Checkpointer::Checkpointer(const std::string& path, int threshold_pages)
    : threshold_pages_(threshold_pages),
      restart_pages_(threshold_pages * restart_factor),
      catch_up_pages_(restart_pages_ * catch_up_factor),
      catch_up_at_(catch_up_pages_),
      db_(path),
      next_copy_at_(threshold_pages) {
  // A connection opens the log when it first reads; until then a checkpoint through it
  // finds no log and copies nothing.
  db_.exec_text("SELECT count(*) FROM sqlite_schema");
  thread_ = std::thread([this] { run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void Checkpointer::committed(sqlite3* owner, int log_pages) noexcept {
  if (log_pages >= catch_up_at_) {
    // A copy that stops short (a reader of another connection holds an old snapshot: the log
    // cannot be copied past it) is not tried again at every commit, which would make each
    // one scan the log while that reader stays: only once it has grown by another threshold.
    catch_up_at_ = catch_up(owner) ? catch_up_pages_ : log_pages + threshold_pages_;
    return;
  }
  if (rest_due_.load(std::memory_order_acquire)) {
    if (!copy_on_owner(owner) && !busy_) {
      // Short for a reason other than this thread's copy (the next commit tries again after
      // that one): a reader holds an old snapshot. This thread tries again once the log has
      // grown by another threshold, and asks for the rest again if it can.
      rest_due_.store(false, std::memory_order_relaxed);
      next_copy_at_.store(log_pages + threshold_pages_, std::memory_order_relaxed);
    }
    return;
  }
  if (log_pages < next_copy_at_.load(std::memory_order_relaxed))
    return;
  {
    std::lock_guard lock(mutex_);
    if (due_)
      return;
    due_ = true;
  }
  wake_.notify_one();
}

bool Checkpointer::catch_up(sqlite3* owner) noexcept {
  // Holding the lock, this thread cannot start a copy of its own meanwhile, which would make
  // this one find it busy: once the copy in progress ends, this one copies the whole log.
  std::unique_lock lock(mutex_);
  copied_.wait(lock, [this] { return !copying_; });
  return copy_on_owner(owner);
}

bool Checkpointer::copy_on_owner(sqlite3* owner) noexcept {
  int log = 0;
  int copied = 0;
  const int rc =
      sqlite3_wal_checkpoint_v2(owner, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
  busy_ = rc == SQLITE_BUSY;
  if (rc != SQLITE_OK || copied != log)
    return false;
  // All of it is in the file: the next commit starts the log over.
  next_copy_at_.store(threshold_pages_, std::memory_order_relaxed);
  rest_due_.store(false, std::memory_order_release);
  return true;
}

void Checkpointer::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || due_; });
    if (stop_)
      return;
    due_ = false;
    copying_ = true;
    lock.unlock();
    int rc = SQLITE_OK;
    const int log = copy(rc);
    lock.lock();
    copying_ = false;
    copied_.notify_all();
    if (rc == SQLITE_OK) {
      // No commit asks again before the log has grown by another threshold_pages.
      next_copy_at_.store(log + threshold_pages_, std::memory_order_relaxed);
      if (log >= restart_pages_)
        rest_due_.store(true, std::memory_order_release);
    } else if (rc != SQLITE_BUSY && wake_.wait_for(lock, retry_after, [this] { return stop_; })) {
      // An error (SQLITE_BUSY is the owner's checkpoint, over in a moment): the next commit
      // past the threshold asks again, retry_after later at the soonest.
      return;
    }
  }
}

int Checkpointer::copy(int& rc) {
  int log = 0;
  int copied = 0;
  // Before a restart, once more: the pages committed during the first copy then leave on
  // this thread too, and the owner's commit copies only those of a shorter copy.
  for (int pass = 0; pass < 2; ++pass) {
    rc = sqlite3_wal_checkpoint_v2(db_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK || log < restart_pages_)
      break;
  }
  return log;
}

}  // namespace notify::sqlite
