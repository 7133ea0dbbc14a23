#include "http_message.hpp"

#include <nlohmann/json.hpp>

namespace demo {

const std::string* HttpRequest::header(std::string_view lower_name) const noexcept {
  for (const auto& h : headers) {
    if (h.first == lower_name)
      return &h.second;
  }
  return nullptr;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, std::string_view message) {
  const nlohmann::json j = {{"error", std::string(message)}};
  // Messages may quote client bytes: replace invalid UTF-8 rather than throw.
  return json(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

HttpResponse HttpResponse::method_not_allowed(std::string_view allow) {
  HttpResponse r = error(405, "method not allowed");
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string serialize(const HttpResponse& response, bool keep_alive, bool head_only) {
  std::string out;
  serialize_into(out, response, keep_alive, head_only);
  return out;
}

void serialize_into(std::string& out, const HttpResponse& response, bool keep_alive, bool head_only,
                    bool http10) {
  out.clear();
  out.reserve(160 + response.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += reason_phrase(response.status);
  out += "\r\n";
  if (!response.content_type.empty()) {
    out += "Content-Type: ";
    out += response.content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(response.body.size());
  out += "\r\n";
  if (!keep_alive)
    out += "Connection: close\r\n";
  else if (http10)
    out += "Connection: keep-alive\r\n";
  for (const auto& h : response.headers) {
    out += h.first;
    out += ": ";
    out += h.second;
    out += "\r\n";
  }
  out += "\r\n";
  if (!head_only)
    out += response.body;
}

}  // namespace demo
