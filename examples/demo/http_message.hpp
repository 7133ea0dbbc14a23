// HTTP/1.1 request and response values of the demo server, and the bytes of a response.
//
// Plain values; distinct objects are safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace demo {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // the request-target as received
  std::string path;    // its path, still percent-encoded ("/api/notifications")
  std::string query;   // its query without '?', still percent-encoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  bool keep_alive = true;      // false: the connection closes after the response
  unsigned http_version = 11;  // major * 10 + minor: 11 for HTTP/1.1

  // The first value of the header named `lower_name` (lower case), or nullptr.
  const std::string* header(std::string_view lower_name) const noexcept;
};

struct HttpResponse {
  int status = 200;
  std::string_view content_type;  // a string with static storage: a literal, an asset's type
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, in order

  // A JSON response with `body` already serialized.
  static HttpResponse json(int status, std::string body);
  // An error: `{"error": message}` as application/json.
  static HttpResponse error(int status, std::string_view message);
  // 405 with `Allow: allow`.
  static HttpResponse method_not_allowed(std::string_view allow);
};

std::string_view reason_phrase(int status) noexcept;

// The full response: status line, headers (Content-Type, Content-Length, Connection: close
// when `keep_alive` is false, the extra headers) and, unless `head_only`, the body.
std::string serialize(const HttpResponse& response, bool keep_alive, bool head_only = false);
// The same bytes, written over `out` (whose capacity a keep-alive connection reuses). With
// `http10` (the request was HTTP/1.0, which closes unless told otherwise) a kept connection
// is announced: Connection: keep-alive.
void serialize_into(std::string& out, const HttpResponse& response, bool keep_alive,
                    bool head_only = false, bool http10 = false);

}  // namespace demo
