// Batched writes: how the connections of one single-threaded io_context reach the kernel.
//
// The sinks of Threading::single transports on one io_context are flushed by one task per
// fan-out. By default that task hands the writes of up to 64 plain TCP connections with
// one event to write each (a paced fan-out's) to the kernel in one io_uring submission
// instead of making one sendmsg() per connection; a connection whose queue gathered
// several events is written with its own sendmsg(), which costs less there. Each
// write is still non-blocking and takes only what its socket's buffer takes, exactly as a
// sendmsg() would. Where the kernel refuses io_uring (not built in, disabled by the
// kernel.io_uring_disabled sysctl, or blocked by a container's seccomp filter) the task
// writes each connection with its own sendmsg(), and nothing else changes.
//
// A process that forks after a context has written calls context.notify_fork() in the
// child (as asio requires): the child then writes with a ring of its own, not its parent's.
//
// Thread safety: every function is safe from any thread.
#pragma once

#include <notify/export.hpp>

#include <asio/execution_context.hpp>

#include <cstdint>

namespace notify {

// Turns batched writes on (the default) or off for the connections on `context`; takes
// effect from the flush task's next pass.
NOTIFY_EXPORT void set_batched_writes(asio::execution_context& context, bool enabled);

// True when this kernel lets the process use io_uring for socket writes (probed once).
NOTIFY_EXPORT bool batched_writes_supported();

// How many socket writes the flush task of `context` has made through io_uring so far.
NOTIFY_EXPORT std::uint64_t batched_write_count(asio::execution_context& context);

}  // namespace notify
