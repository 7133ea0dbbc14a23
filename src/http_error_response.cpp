#include "http_error_response.hpp"

#include "json_text.hpp"

namespace notify::detail {

namespace {

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

}  // namespace

std::string http_error_response(int status, std::string_view message,
                                std::string_view extra_fields) {
  std::string body = "{\"error\":";
  if (!append_json_string(body, message))
    append_json_string(body, "refused");
  body += '}';
  std::string out = "HTTP/1.1 " + std::to_string(status) + ' ';
  out += reason_phrase(status);
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_fields;
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace notify::detail
