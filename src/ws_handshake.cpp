#include <notify/ws_handshake.hpp>

#include "http_error_response.hpp"
#include "http_token.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace notify::ws {
namespace {

using detail::iequals_ascii;
using detail::is_token;

constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::size_t key_bytes = 16;

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Every value of header `name`, in order.
std::vector<std::string_view> values(const HandshakeRequest& request, std::string_view name) {
  std::vector<std::string_view> out;
  for (const auto& [key, value] : request.headers) {
    if (iequals_ascii(key, name))
      out.emplace_back(value);
  }
  return out;
}

// The elements of a comma-separated header list, over all the header's lines; empty
// elements are dropped.
std::vector<std::string_view> list(const HandshakeRequest& request, std::string_view name) {
  std::vector<std::string_view> out;
  for (std::string_view value : values(request, name)) {
    while (!value.empty()) {
      const std::size_t comma = value.find(',');
      const std::string_view element = trim(value.substr(0, comma));
      if (!element.empty())
        out.push_back(element);
      if (comma == std::string_view::npos)
        break;
      value.remove_prefix(comma + 1);
    }
  }
  return out;
}

bool lists_token(const HandshakeRequest& request, std::string_view name, std::string_view token) {
  const auto elements = list(request, name);
  return std::any_of(elements.begin(), elements.end(),
                     [&](std::string_view e) { return iequals_ascii(e, token); });
}

bool is_base64_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// 16 bytes in base64 are 22 characters and "==". The last character carries the 16th
// byte's low two bits and four zero bits: A, Q, g or w.
bool is_valid_key(std::string_view key) noexcept {
  constexpr std::size_t chars = (key_bytes * 4 + 2) / 3;
  if (key.size() != chars + 2 || key.substr(chars) != "==")
    return false;
  const char last = key[chars - 1];
  if (last != 'A' && last != 'Q' && last != 'g' && last != 'w')
    return false;
  return std::all_of(key.begin(), key.begin() + chars, is_base64_char);
}

HandshakeResult reject(int status, std::string error) {
  HandshakeResult result;
  result.status = status;
  std::string_view fields;
  if (status == 405)
    fields = "Allow: GET\r\n";
  if (status == 426)
    fields = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
  result.response = notify::detail::http_error_response(status, error, fields);
  result.error = std::move(error);
  return result;
}

}  // namespace

std::string accept_key(std::string_view client_key) {
  std::string input(client_key);
  input += websocket_guid;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_size, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("ws: SHA-1 failed");
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> encoded{};
  const int size = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<std::size_t>(size));
}

HandshakeResult accept_handshake(const HandshakeRequest& request, const HandshakeOptions& options) {
  if (request.method != "GET")
    return reject(405, "a WebSocket handshake must be a GET request");
  if (request.http_version < 11)
    return reject(400, "a WebSocket handshake needs HTTP/1.1 or later");
  if (values(request, "Host").size() != 1)
    return reject(400, "a request needs exactly one Host header");
  if (!lists_token(request, "Upgrade", "websocket"))
    return reject(400, "the Upgrade header must list websocket");
  if (!lists_token(request, "Connection", "upgrade"))
    return reject(400, "the Connection header must list upgrade");

  const auto versions = values(request, "Sec-WebSocket-Version");
  if (versions.size() != 1 || trim(versions.front()) != "13")
    return reject(426, "the WebSocket version must be 13");

  const auto keys = values(request, "Sec-WebSocket-Key");
  if (keys.size() != 1 || !is_valid_key(trim(keys.front())))
    return reject(400, "Sec-WebSocket-Key must be the base64 of 16 bytes");

  if (options.origin_allowed) {
    const auto origins = values(request, "Origin");
    const std::string_view origin = origins.empty() ? std::string_view() : trim(origins.front());
    if (origins.size() > 1 || !options.origin_allowed(origin))
      return reject(403, "origin not allowed");
  }

  HandshakeResult result;
  result.status = 101;
  if (options.select_subprotocol) {
    // Only tokens (RFC 6455 section 4.1) are offered: the selected one is echoed in the
    // response, where anything else (a CR, a control byte, a separator) has no place.
    std::vector<std::string> offered;
    for (const auto element : list(request, "Sec-WebSocket-Protocol")) {
      if (is_token(element))
        offered.emplace_back(element);
    }
    if (!offered.empty()) {
      result.subprotocol = options.select_subprotocol(offered);
      if (!result.subprotocol.empty() &&
          std::find(offered.begin(), offered.end(), result.subprotocol) == offered.end())
        throw std::logic_error(
            "ws: select_subprotocol chose a subprotocol the client did not offer");
    }
  }
  if (options.permessage_deflate) {
    std::string extensions;
    for (const auto value : values(request, "Sec-WebSocket-Extensions")) {
      if (!extensions.empty())
        extensions += ',';
      extensions += value;
    }
    result.deflate = negotiate_deflate(extensions);
  }

  auto& r = result.response;
  r = "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ";
  r += accept_key(trim(keys.front()));
  r += "\r\n";
  if (!result.subprotocol.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    r += result.subprotocol;
    r += "\r\n";
  }
  if (result.deflate) {
    r += "Sec-WebSocket-Extensions: ";
    r += deflate_response(*result.deflate);
    r += "\r\n";
  }
  r += "\r\n";
  return result;
}

}  // namespace notify::ws
