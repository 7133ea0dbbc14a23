#include <notify/redis_options.hpp>

#include "connection.hpp"

#include <charconv>
#include <stdexcept>

namespace notify {
namespace {

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// Percent-decoding of the userinfo part of a URL.
std::string url_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      throw std::invalid_argument("redis URL: bad percent-encoding");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

template <typename T>
bool parse_number(std::string_view text, T& out, T max) {
  if (text.empty())
    return false;
  unsigned long long v = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || v > static_cast<unsigned long long>(max))
    return false;
  out = static_cast<T>(v);
  return true;
}

}  // namespace

std::string redis_escape(std::string_view user) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(user.size());
  for (const char c : user) {
    if (is_unreserved(c)) {
      out.push_back(c);
    } else {
      const auto u = static_cast<unsigned char>(c);
      out.push_back('%');
      out.push_back(digits[u >> 4]);
      out.push_back(digits[u & 15]);
    }
  }
  return out;
}

namespace redis_detail {
std::string_view hash_tag(std::string_view key) noexcept {
  const auto open = key.find('{');
  if (open == std::string_view::npos)
    return {};
  const auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1)
    return {};
  return key.substr(open + 1, close - open - 1);
}

unsigned key_slot(std::string_view key) noexcept {
  const auto tag = hash_tag(key);
  const auto hashed = tag.empty() ? key : tag;
  // CRC-16/XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster specifies it.
  std::uint16_t crc = 0;
  for (const char c : hashed) {
    crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(c) << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
  }
  return crc % 16384u;
}

std::string endpoint_text(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<std::string> redis_unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      if (!is_unreserved(text[i]))
        return std::nullopt;
      out.push_back(text[i]);
      continue;
    }
    const int hi = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    const int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}
}  // namespace redis_detail

namespace {

// "host[:port]" or "[v6]:port"; `port` stays as given when the text has none.
RedisEndpoint parse_endpoint(std::string_view rest, std::uint16_t port_if_none) {
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos)
      throw std::invalid_argument("redis URL: unterminated [IPv6] host");
    host = rest.substr(1, close - 1);
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        throw std::invalid_argument("redis URL: junk after the [IPv6] host");
      port = after.substr(1);
      if (port.empty())
        throw std::invalid_argument("redis URL: empty port");
    }
  } else if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty())
      throw std::invalid_argument("redis URL: empty port");
  }
  if (host.empty())
    throw std::invalid_argument("redis URL: no host");
  RedisEndpoint out{std::string(host), port_if_none};
  if (!port.empty()) {
    std::uint16_t p = 0;
    if (!parse_number<std::uint16_t>(port, p, 65535) || p == 0)
      throw std::invalid_argument("redis URL: '" + std::string(port) + "' is not a port");
    out.port = p;
  }
  return out;
}

unsigned parse_db(std::string_view text) {
  unsigned db = 0;
  if (!parse_number<unsigned>(text, db, 1000000))
    throw std::invalid_argument("redis URL: '" + std::string(text) + "' is not a database number");
  return db;
}

}  // namespace

RedisOptions parse_redis_url(std::string_view url, RedisOptions base) {
  constexpr std::string_view plain = "redis://";
  constexpr std::string_view sentinel = "redis-sentinel://";
  constexpr std::string_view cluster = "redis-cluster://";
  const auto starts = [url](std::string_view scheme) {
    return url.substr(0, scheme.size()) == scheme;
  };
  const bool via_sentinel = starts(sentinel);
  const bool in_cluster = starts(cluster);
  if (!via_sentinel && !in_cluster && !starts(plain))
    throw std::invalid_argument(
        "redis URL: '" + std::string(url) +
        "' does not start with redis://, redis-sentinel:// or redis-cluster://");
  std::string_view rest = url.substr(via_sentinel ? sentinel.size()
                                     : in_cluster ? cluster.size()
                                                  : plain.size());
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    const auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      base.user.clear();
      base.password = url_decode(userinfo);  // redis://password@host, as redis-cli reads it
    } else {
      base.user = url_decode(userinfo.substr(0, colon));
      base.password = url_decode(userinfo.substr(colon + 1));
    }
  }
  base.sentinels.clear();
  base.sentinel_master.clear();
  base.cluster_nodes.clear();
  if (!via_sentinel && !in_cluster) {
    const auto endpoint = parse_endpoint(rest, base.port);
    base.host = endpoint.host;
    base.port = endpoint.port;
    if (!path.empty())
      base.db = parse_db(path);
    return base;
  }
  auto& nodes = in_cluster ? base.cluster_nodes : base.sentinels;
  while (true) {
    const auto comma = rest.find(',');
    nodes.push_back(parse_endpoint(rest.substr(0, comma), in_cluster ? 6379 : 26379));
    if (comma == std::string_view::npos)
      break;
    rest = rest.substr(comma + 1);
  }
  if (in_cluster) {
    if (!path.empty())
      throw std::invalid_argument("redis URL: redis-cluster:// takes no path (a cluster has db 0)");
    base.db = 0;
    return base;
  }
  const auto slash = path.find('/');
  const auto master = path.substr(0, slash);
  if (master.empty())
    throw std::invalid_argument("redis URL: redis-sentinel:// needs /MASTER, the primary's name");
  base.sentinel_master = url_decode(master);
  if (slash != std::string_view::npos)
    base.db = parse_db(path.substr(slash + 1));
  return base;
}

std::string describe(const RedisOptions& options) {
  using redis_detail::endpoint_text;
  const auto joined = [](const std::vector<RedisEndpoint>& endpoints) {
    std::string out;
    for (const auto& e : endpoints)
      out += (out.empty() ? "" : ",") + endpoint_text(e.host, e.port);
    return out;
  };
  if (!options.cluster_nodes.empty())
    return "cluster " + joined(options.cluster_nodes);
  if (!options.sentinels.empty())
    return options.sentinel_master + " via " + joined(options.sentinels) + "/" +
           std::to_string(options.db);
  return endpoint_text(options.host, options.port) + "/" + std::to_string(options.db);
}

}  // namespace notify
