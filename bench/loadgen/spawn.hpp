// Starts a server (notify-demo or the Node peer) as a child process and finds the port it
// printed: "listening on http://HOST:PORT".
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;  // kept open: a server that prints later must not get EPIPE
  std::string url;     // http://HOST:PORT
};

// Throws std::runtime_error when the program cannot start or prints no address in time.
Child spawn_server(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// SIGTERM, then SIGKILL after `grace`. Returns how it ended ("exit 0", "signal 9").
std::string stop_server(Child& child, std::chrono::milliseconds grace);

}  // namespace loadgen
