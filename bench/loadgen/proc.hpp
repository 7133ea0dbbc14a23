// What the load generator reads about a server process (/proc) and about itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace loadgen {

struct ProcCpu {
  double user_s = 0;           // utime, from /proc/PID/stat (clock ticks)
  double sys_s = 0;            // stime
  std::uint64_t sched_ns = 0;  // sum over threads of /proc/PID/task/*/schedstat (ns on a CPU)
};

std::optional<ProcCpu> read_proc_cpu(pid_t pid);
// VmRSS of /proc/PID/status in KiB.
std::optional<std::uint64_t> read_vmrss_kib(pid_t pid);

struct SelfCpu {
  double user_s = 0;
  double sys_s = 0;
};
SelfCpu read_self_cpu();

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
std::uint64_t raise_fd_limit();

}  // namespace loadgen
