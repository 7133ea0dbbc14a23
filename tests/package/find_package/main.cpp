// Consumer of an installed notify (tests/package): the umbrella header, the version header
// and the Asio that libnotify compiles (ASIO_SEPARATE_COMPILATION), SSL and the deprecated
// API included.
#include <notify/notify.hpp>
#include <notify/version.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/ssl/context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>

int main() {
  int failures = 0;

#ifdef NOTIFY_EXPECTED_VERSION
  if (std::strcmp(notify::version_string, NOTIFY_EXPECTED_VERSION) != 0) {
    std::fprintf(stderr, "version mismatch: header %s, package %s\n", notify::version_string,
                 NOTIFY_EXPECTED_VERSION);
    ++failures;
  }
#endif

  asio::io_context io;
  int ran = 0;
  asio::post(io, [&ran] { ++ran; });
  // A host's older Asio code still compiles with notify linked: Asio's deprecated API is
  // left as Asio has it.
  io.post([&ran] { ++ran; });
  asio::steady_timer timer(io, std::chrono::milliseconds(1));
  timer.async_wait([&ran](const asio::error_code& ec) {
    if (!ec) {
      ++ran;
    }
  });
  io.run();
  if (ran != 3) {
    std::fprintf(stderr, "io_context ran %d handlers, expected 3\n", ran);
    ++failures;
  }

  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_default_verify_paths();

  std::printf("notify %s (%d.%d.%d): %s\n", notify::version_string, notify::version_major,
              notify::version_minor, notify::version_patch, failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
