#include "proc.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace loadgen {
namespace {

std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<ProcCpu> read_proc_cpu(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  const auto stat = slurp(base + "/stat");
  if (!stat)
    return std::nullopt;
  // The command name (field 2) may hold spaces: fields are counted after its ')'.
  const auto close = stat->rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream fields(stat->substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  // Field 3 is the state; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && (fields >> f); ++i) {
    if (i == 14)
      utime = std::strtoull(f.c_str(), nullptr, 10);
    if (i == 15)
      stime = std::strtoull(f.c_str(), nullptr, 10);
  }
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcCpu cpu;
  cpu.user_s = static_cast<double>(utime) / tick;
  cpu.sys_s = static_cast<double>(stime) / tick;
  if (DIR* dir = opendir((base + "/task").c_str())) {
    while (const dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.')
        continue;
      if (const auto s = slurp(base + "/task/" + e->d_name + "/schedstat"))
        cpu.sched_ns += std::strtoull(s->c_str(), nullptr, 10);
    }
    closedir(dir);
  }
  return cpu;
}

std::optional<std::uint64_t> read_vmrss_kib(pid_t pid) {
  const auto status = slurp("/proc/" + std::to_string(pid) + "/status");
  if (!status)
    return std::nullopt;
  const auto at = status->find("VmRSS:");
  if (at == std::string::npos)
    return std::nullopt;
  return std::strtoull(status->c_str() + at + 6, nullptr, 10);
}

SelfCpu read_self_cpu() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  SelfCpu c;
  c.user_s =
      static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
  c.sys_s =
      static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
  return c;
}

std::uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur;
}

}  // namespace loadgen
