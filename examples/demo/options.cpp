#include "options.hpp"

#include <asio/ip/address.hpp>

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace demo {
namespace {

std::optional<unsigned long long> parse_unsigned(std::string_view text, unsigned long long max) {
  unsigned long long value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || value > max) return std::nullopt;
  return value;
}

}  // namespace

ParsedOptions parse_options(const std::vector<std::string>& args) {
  ParsedOptions result;
  Options& o = result.options;
  auto fail = [&result](std::string message) {
    result.action = ParsedOptions::Action::error;
    result.error = std::move(message);
    return result;
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> value;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    if (flag == "--help" || flag == "-h") {
      if (value) return fail("--help takes no value");
      result.action = ParsedOptions::Action::help;
      return result;
    }
    const bool known = flag == "--port" || flag == "--bind" || flag == "--heartbeat" ||
                       flag == "--batch-ms" || flag == "--auth" || flag == "--threads" ||
                       flag == "--max-connections";
    if (!known) return fail("unknown option '" + args[i] + "'");
    if (!value) {
      if (i + 1 >= args.size()) return fail(flag + " needs a value");
      value = args[++i];
    }
    const std::string& v = *value;

    if (flag == "--port") {
      const auto n = parse_unsigned(v, 65535);
      if (!n) return fail("--port: '" + v + "' is not a port (0 to 65535)");
      o.port = static_cast<unsigned short>(*n);
    } else if (flag == "--bind") {
      std::error_code ec;
      asio::ip::make_address(v, ec);
      if (ec) return fail("--bind: '" + v + "' is not an IP address");
      o.bind = v;
    } else if (flag == "--heartbeat") {
      const auto n = parse_unsigned(v, 24 * 3600);
      if (!n || *n < 1) return fail("--heartbeat: '" + v + "' is not a number of seconds (at least 1)");
      o.heartbeat = std::chrono::seconds(*n);
    } else if (flag == "--batch-ms") {
      const auto n = parse_unsigned(v, 60000);
      if (!n) return fail("--batch-ms: '" + v + "' is not a number of milliseconds (0 to 60000)");
      o.batch = std::chrono::milliseconds(*n);
    } else if (flag == "--auth") {
      if (v != "dev") return fail("--auth: '" + v + "' is not supported (only 'dev')");
      o.auth = v;
    } else if (flag == "--threads") {
      const auto n = parse_unsigned(v, 256);
      if (!n || *n < 1) return fail("--threads: '" + v + "' is not a thread count (1 to 256)");
      o.threads = static_cast<unsigned>(*n);
    } else if (flag == "--max-connections") {
      const auto n = parse_unsigned(v, 10000000);
      if (!n || *n < 1) return fail("--max-connections: '" + v + "' is not a count (at least 1)");
      o.max_connections = static_cast<std::size_t>(*n);
    }
  }
  return result;
}

std::string usage(const std::string& program) {
  return "usage: " + program + " [options]\n"
         "\n"
         "The notify demo server: the demo page, its HTTP API and the event stream.\n"
         "\n"
         "  --port N              port to listen on; 0 picks a free one (default 8080)\n"
         "  --bind ADDR           address to listen on (default 127.0.0.1)\n"
         "  --heartbeat SECONDS   heartbeat on idle streams (default 30, at least 1)\n"
         "  --batch-ms MS         per-user batching window (default 200, 0 disables)\n"
         "  --auth dev            user from ?user= or X-User-Id (the only mode, default)\n"
         "  --threads N           io_context threads (default 1)\n"
         "  --max-connections N   streams on this instance (default 100000)\n"
         "  --help                show this help\n";
}

}  // namespace demo
