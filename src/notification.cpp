#include <notify/notification.hpp>
#include <notify/utf8.hpp>

#include "json_shape.hpp"
#include "notification_fields.hpp"
#include "json_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <iterator>
#include <string_view>

namespace notify {
namespace {

using nlohmann::json;
using namespace std::string_view_literals;

using detail::string_fields;
using detail::too_deep;

json string_or_null(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

// `quoted` is the member's key as written, `"key":`, appended in one piece: this runs a dozen
// times for every notification published.
void append_member(std::string& out, std::string_view quoted, const std::string& value) {
  out.append(quoted.data(), quoted.size());
  if (value.empty()) {
    out.append("null,", 5);
    return;
  }
  if (!detail::append_json_string(out, value))
    throw ValidationError(std::string(quoted.substr(1, quoted.size() - 3)), "is not valid UTF-8");
  out += ',';
}

}  // namespace

void append_json(std::string& out, const Notification& n) {
  // Keys in the byte order nlohmann::json's std::map gives them.
  out += '{';
  append_member(out, R"("actionUrl":)"sv, n.action_url);
  append_member(out, R"("actorId":)"sv, n.actor_id);
  append_member(out, R"("body":)"sv, n.body);
  if (n.broadcast)
    out.append(R"("broadcast":true,)"sv);
  append_member(out, R"("createdAt":)"sv, n.created_at);
  out.append(R"("data":)"sv);
  if (n.data.is_null())
    out.append("{}"sv);
  else
    out += n.data.dump();
  out += ',';
  append_member(out, R"("entityId":)"sv, n.entity_id);
  append_member(out, R"("entityType":)"sv, n.entity_type);
  append_member(out, R"("id":)"sv, n.id);
  append_member(out, R"("imageUrl":)"sv, n.image_url);
  append_member(out, R"("readAt":)"sv, n.read_at);
  append_member(out, R"("title":)"sv, n.title);
  append_member(out, R"("type":)"sv, n.type);
  if (!n.broadcast)
    append_member(out, R"("userId":)"sv, n.user_id);
  out.back() = '}';
}

std::string to_json_text(const Notification& n) {
  std::string out;
  out.reserve(256 + n.title.size() + n.body.size());
  append_json(out, n);
  return out;
}

ValidationError::ValidationError(std::string field, const std::string& problem)
    : std::invalid_argument(field + ": " + problem), field_(std::move(field)) {}

void to_json(json& j, const Notification& n) {
  j = json::object();
  for (const auto& f : string_fields) {
    if (f.member == &Notification::user_id && n.broadcast)
      continue;
    j[f.json_name.data()] = string_or_null(n.*(f.member));
  }
  if (n.broadcast)
    j["broadcast"] = true;
  j["data"] = n.data.is_null() ? json::object() : n.data;
}

void from_json(const json& j, Notification& n) {
  if (!j.is_object())
    throw ValidationError("notification", "must be a JSON object");
  // One pass over the members: a lookup per field would compare keys a dozen times each.
  // The fields are then checked in the table's order, so the first problem reported does
  // not depend on the order of the members.
  constexpr std::size_t field_count = std::size(string_fields);
  const json* strings[field_count] = {};
  const json* broadcast = nullptr;
  const json* data = nullptr;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string_view key = it.key();
    if (key == "broadcast") {
      broadcast = &*it;
    } else if (key == "data") {
      data = &*it;
    } else {
      for (std::size_t f = 0; f < field_count; ++f) {
        if (key == string_fields[f].json_name) {
          strings[f] = &*it;
          break;
        }
      }
    }
  }
  Notification out;
  for (std::size_t f = 0; f < field_count; ++f) {
    const json* value = strings[f];
    if (!value || value->is_null())
      continue;
    if (!value->is_string())
      throw ValidationError(std::string(string_fields[f].json_name), "must be a string");
    out.*(string_fields[f].member) = value->get_ref<const std::string&>();
  }
  if (broadcast && !broadcast->is_null()) {
    if (!broadcast->is_boolean())
      throw ValidationError("broadcast", "must be true or false");
    out.broadcast = broadcast->get<bool>();
  }
  if (data && !data->is_null()) {
    if (!data->is_object())
      throw ValidationError("data", "must be a JSON object");
    constexpr std::size_t max_depth = default_max_data_depth;
    if (detail::shape_of(*data, max_depth).depth > max_depth)  // before the copy, which recurses
      throw ValidationError("data", too_deep(max_depth));
    out.data = *data;
  }
  n = std::move(out);
}

std::optional<std::string> find_problem(const Notification& d, const ValidationLimits& limits) {
  auto problem = [](const char* field, const std::string& what) {
    return std::optional<std::string>(std::string(field) + ": " + what);
  };
  if (d.type.empty())
    return problem("type", "missing");
  if (std::find(limits.allowed_types.begin(), limits.allowed_types.end(), d.type) ==
      limits.allowed_types.end()) {
    std::string allowed;
    for (const auto& t : limits.allowed_types)
      allowed += (allowed.empty() ? "" : ", ") + t;
    return problem("type", fmt::format("'{}' is not one of {}", d.type, allowed));
  }
  if (d.title.empty())
    return problem("title", "missing");
  if (d.title.size() > limits.max_title_bytes)
    return problem("title", fmt::format("longer than {} bytes", limits.max_title_bytes));
  if (d.body.size() > limits.max_body_bytes)
    return problem("body", fmt::format("longer than {} bytes", limits.max_body_bytes));
  if (!d.broadcast && d.user_id.empty())
    return problem("userId", "missing");
  if (d.broadcast && !d.user_id.empty())
    return problem("userId", "must be empty for a broadcast");
  const std::pair<const char*, const std::string*> short_fields[] = {
      {"userId", &d.user_id},     {"actorId", &d.actor_id},     {"entityType", &d.entity_type},
      {"entityId", &d.entity_id}, {"actionUrl", &d.action_url}, {"imageUrl", &d.image_url},
  };
  for (const auto& [name, value] : short_fields) {
    if (value->size() > limits.max_field_bytes)
      return problem(name, fmt::format("longer than {} bytes", limits.max_field_bytes));
  }
  for (const auto& f : string_fields) {  // every string must be writable as JSON
    if (!is_valid_utf8(d.*(f.member)))
      return problem(f.json_name.data(), "is not valid UTF-8");
  }
  if (d.idempotency_key.size() > max_idempotency_key_bytes)
    return problem("idempotencyKey",
                   fmt::format("longer than {} bytes", max_idempotency_key_bytes));
  // Printable ASCII: it travels in an HTTP header and in store keys as it is.
  if (std::any_of(d.idempotency_key.begin(), d.idempotency_key.end(),
                  [](char c) { return c <= ' ' || c > '~'; }))
    return problem("idempotencyKey", "may hold only printable ASCII without spaces");
  if (!d.data.is_null()) {
    if (!d.data.is_object())
      return problem("data", "must be a JSON object");
    const auto shape = detail::shape_of(d.data, limits.max_data_depth);
    if (shape.depth > limits.max_data_depth)
      return problem("data", too_deep(limits.max_data_depth));
    // Or the notification would be stored and then fail to encode, in every snapshot after.
    if (!shape.valid_utf8)
      return problem("data", "is not valid UTF-8");
    if (shape.dump_bound > limits.max_data_bytes && d.data.dump().size() > limits.max_data_bytes)
      return problem("data", fmt::format("larger than {} bytes", limits.max_data_bytes));
  }
  return std::nullopt;
}

void validate(const Notification& draft, const ValidationLimits& limits) {
  if (auto p = find_problem(draft, limits)) {
    const auto colon = p->find(':');
    throw ValidationError(p->substr(0, colon), p->substr(colon + 2));
  }
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  long millis = static_cast<long>(ms % 1000);
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  // Every notification gets a timestamp: the date and time of the last second seen are
  // kept per thread, so most calls only write the milliseconds.
  thread_local std::time_t cached_secs = -1;
  constexpr std::size_t date_time_size = 19;  // "YYYY-MM-DDTHH:MM:SS"
  thread_local char cached[date_time_size];
  if (secs != cached_secs) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const auto text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (text.size() != sizeof cached)  // a year beyond 9999 or before 0: no caching
      return fmt::format("{}.{:03}Z", text, millis);
    std::copy(text.begin(), text.end(), cached);
    cached_secs = secs;
  }
  // Built in place, so the string allocates once.
  char text[date_time_size + 5];
  std::copy(cached, cached + date_time_size, text);
  text[date_time_size] = '.';
  text[date_time_size + 1] = static_cast<char>('0' + millis / 100);
  text[date_time_size + 2] = static_cast<char>('0' + millis / 10 % 10);
  text[date_time_size + 3] = static_cast<char>('0' + millis % 10);
  text[date_time_size + 4] = 'Z';
  return std::string(text, sizeof text);
}

}  // namespace notify
