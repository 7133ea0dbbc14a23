// notify-bench-floor: the physical floor of "one write per delivery" on this machine.
//
// N loopback TCP connections; one writer thread writes M events of S bytes to each of
// them, round-robin like a fan-out (one round = one event to every connection), B events
// per writev(); a reader thread drains the other ends. Reports the writer thread's CPU
// time per event (getrusage(RUSAGE_THREAD): user and system), which is what a server
// cannot go below when it writes each delivery with its own system call.
//
//   notify-bench-floor --sockets 1000 --writes 1000 --batch 1 --size 150
//
// --rate R paces the rounds at R events per second in all (like a paced fan-out): the
// reader goes back to sleep between rounds, so every write also pays for waking it, as a
// server's writes do when its clients are idle between events.
//
// --uring K hands the writes of K connections to the kernel in one io_uring submission,
// with the same code as notify's flush lane (src/uring_writer.cpp): one system call per K
// writes instead of one per write. Each connection still gets its own send of one event
// (--batch 1), as the lane's are.
//
// One JSON line on stdout; a summary on stderr.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <climits>

#include "uring_writer.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <chrono>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::size_t sockets = 1000;
  std::size_t writes = 1000;
  std::size_t batch = 1;
  std::size_t size = 150;
  int writer_cpu = -1;
  int reader_cpu = -1;
  double rate = 0;        // events per second over all connections; 0: flat out
  std::size_t uring = 0;  // writes per io_uring submission; 0: a writev() each
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "notify-bench-floor: %s\n", what.c_str());
  std::exit(2);
}

[[noreturn]] void die_errno(const std::string& what) {
  die(what + ": " + std::strerror(errno));
}

long long count(const std::string& flag, const std::string& v) {
  long long n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size())
    die(flag + ": '" + v + "' is not a number");
  return n;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::puts(
          "usage: notify-bench-floor [--sockets N] [--writes M] [--batch B] [--size BYTES]\n"
          "                          [--rate EVENTS_PER_S] [--uring WRITES_PER_SUBMISSION]\n"
          "                          [--writer-cpu CPU] [--reader-cpu CPU]");
      std::exit(0);
    }
    if (i + 1 >= argc)
      die(flag + " needs a value");
    const std::string v = argv[++i];
    if (flag == "--sockets")
      o.sockets = static_cast<std::size_t>(count(flag, v));
    else if (flag == "--writes")
      o.writes = static_cast<std::size_t>(count(flag, v));
    else if (flag == "--batch")
      o.batch = static_cast<std::size_t>(count(flag, v));
    else if (flag == "--size")
      o.size = static_cast<std::size_t>(count(flag, v));
    else if (flag == "--writer-cpu")
      o.writer_cpu = static_cast<int>(count(flag, v));
    else if (flag == "--reader-cpu")
      o.reader_cpu = static_cast<int>(count(flag, v));
    else if (flag == "--uring")
      o.uring = static_cast<std::size_t>(count(flag, v));
    else if (flag == "--rate")
      o.rate = static_cast<double>(count(flag, v));
    else
      die("unknown option '" + flag + "'");
  }
  if (o.sockets == 0 || o.writes == 0 || o.batch == 0 || o.size == 0)
    die("every count must be at least 1");
  if (o.batch > IOV_MAX)
    die("--batch: at most " + std::to_string(IOV_MAX));
  if (o.uring > 4096)
    die("--uring: at most 4096");
  if (o.uring && o.batch != 1)
    die("--uring: one event per send (--batch 1), as notify's flush lane writes");
  return o;
}

void pin(int cpu) {
  if (cpu < 0)
    return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
    die("cannot pin to CPU " + std::to_string(cpu));
}

double tv(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

double mono() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * o.sockets + 16)
    die("--sockets " + std::to_string(o.sockets) + ": not enough open files (ulimit -n)");

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0)
    die_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    die_errno("bind");
  if (listen(listener, 4096) != 0)
    die_errno("listen");
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

  std::vector<int> writers, readers;
  for (std::size_t i = 0; i < o.sockets; ++i) {
    const int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c < 0)
      die_errno("socket");
    // Spread the sources like the load generator does.
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + static_cast<unsigned>(i % 32));
    int one = 1;
    setsockopt(c, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(c, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0)
      die_errno("bind source");
    if (connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
      die_errno("connect");
    const int s = accept(listener, nullptr, nullptr);
    if (s < 0)
      die_errno("accept");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    writers.push_back(s);
    readers.push_back(c);
  }
  close(listener);

  const std::size_t total_bytes = o.sockets * o.writes * o.size;
  std::atomic<bool> reader_ready{false};
  std::thread reader([&] {
    pin(o.reader_cpu);
    const int ep = epoll_create1(0);
    for (const int fd : readers) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    reader_ready = true;
    std::vector<char> buf(256 * 1024);
    std::vector<epoll_event> events(1024);
    std::size_t got = 0;
    while (got < total_bytes) {
      const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
      for (int i = 0; i < n; ++i) {
        for (;;) {
          const ssize_t r = read(events[i].data.fd, buf.data(), buf.size());
          if (r > 0) {
            got += static_cast<std::size_t>(r);
            if (static_cast<std::size_t>(r) < buf.size())
              break;
            continue;
          }
          break;
        }
      }
    }
    close(ep);
  });
  while (!reader_ready)
    std::this_thread::yield();

  pin(o.writer_cpu);
  const std::string payload(o.size, 'x');
  std::vector<iovec> iov(o.batch);
  for (auto& v : iov)
    v = iovec{const_cast<char*>(payload.data()), payload.size()};
  std::unique_ptr<notify::detail::UringWriter> ring;
  std::vector<notify::detail::UringWriter::Completion> completions(o.uring);
  if (o.uring) {
    ring = notify::detail::UringWriter::open(static_cast<unsigned>(o.uring));
    if (!ring)
      die("--uring: this kernel refuses io_uring");
  }

  rusage r0{}, r1{};
  getrusage(RUSAGE_THREAD, &r0);
  const double t0 = mono();
  std::size_t syscalls = 0;
  // Paced: a round of o.batch events to every connection every `period` seconds.
  const double period = o.rate > 0 ? static_cast<double>(o.sockets * o.batch) / o.rate : 0.0;
  double wall_sleeping = 0;
  for (std::size_t done = 0; done < o.writes; done += o.batch) {
    if (period > 0) {
      const double due = t0 + period * static_cast<double>(done / o.batch);
      const double now = mono();
      if (due > now) {
        std::this_thread::sleep_for(std::chrono::duration<double>(due - now));
        wall_sleeping += due - now;
      }
    }
    const std::size_t n = std::min(o.batch, o.writes - done);
    const std::size_t want = n * o.size;
    // A short write (full socket buffer) is finished with plain blocking writes.
    const auto finish = [&](int fd, ssize_t w) {
      if (w < 0 && errno != EAGAIN)
        die_errno("write");
      for (std::size_t left = want - static_cast<std::size_t>(std::max<ssize_t>(w, 0)); left;) {
        const std::string rest(left, 'x');
        w = write(fd, rest.data(), rest.size());
        ++syscalls;
        if (w < 0)
          die_errno("write");
        left -= static_cast<std::size_t>(w);
      }
    };
    if (ring) {
      for (std::size_t first = 0; first < writers.size(); first += o.uring) {
        const std::size_t last = std::min(writers.size(), first + o.uring);
        for (std::size_t i = first; i < last; ++i)
          ring->add(writers[i], payload.data(), payload.size(), i);
        ++syscalls;
        const auto got = ring->submit(completions.data());
        if (got != last - first)
          die("io_uring_enter failed");
        for (std::size_t c = 0; c < got; ++c) {
          const int fd = writers[completions[c].tag];
          const long result = completions[c].result;
          errno = result < 0 ? static_cast<int>(-result) : 0;
          finish(fd, result < 0 ? -1 : static_cast<ssize_t>(result));
        }
      }
      continue;
    }
    for (const int fd : writers) {
      const ssize_t w = writev(fd, iov.data(), static_cast<int>(n));
      ++syscalls;
      finish(fd, w);
    }
  }
  const double t1 = mono();
  getrusage(RUSAGE_THREAD, &r1);
  reader.join();

  const double user = tv(r1.ru_utime) - tv(r0.ru_utime);
  const double sys = tv(r1.ru_stime) - tv(r0.ru_stime);
  const double events = static_cast<double>(o.sockets * o.writes);
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"sockets\":%zu,\"writes\":%zu,\"batch\":%zu,\"size\":%zu,\"events\":%.0f,"
                "\"syscalls\":%zu,\"writer_user_s\":%.6f,\"writer_sys_s\":%.6f,\"wall_s\":%.6f,"
                "\"ns_per_event\":%.1f,\"user_ns_per_event\":%.1f,\"sys_ns_per_event\":%.1f,"
                "\"events_per_s\":%.0f,\"rate\":%.0f,\"idle_s\":%.6f,\"uring\":%zu}",
                o.sockets, o.writes, o.batch, o.size, events, syscalls, user, sys, t1 - t0,
                (user + sys) * 1e9 / events, user * 1e9 / events, sys * 1e9 / events,
                events / (t1 - t0), o.rate, wall_sleeping, o.uring);
  std::printf("%s\n", line);
  std::fprintf(stderr,
               "floor: %zu sockets x %zu events of %zu B, %zu per writev: %.0f ns CPU per event "
               "(user %.0f, system %.0f)\n",
               o.sockets, o.writes, o.size, o.batch, (user + sys) * 1e9 / events,
               user * 1e9 / events, sys * 1e9 / events);
  for (const int fd : writers)
    close(fd);
  for (const int fd : readers)
    close(fd);
  return 0;
}
