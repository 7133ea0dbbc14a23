// The string members of a notification's JSON form, and the wording of a problem, shared by
// from_json(), find_problem() and parse_notification(). The order is the one from_json() checks
// them in (its first problem is the one reported), not the order nlohmann::json writes them.
//
// Thread safety: constants.
#pragma once

#include <notify/notification.hpp>

#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>

namespace notify::detail {

struct StringField {
  std::string_view json_name;  // a literal: data() is null-terminated
  std::string Notification::*member;
};

inline constexpr StringField string_fields[] = {
    {"id", &Notification::id},
    {"userId", &Notification::user_id},
    {"type", &Notification::type},
    {"title", &Notification::title},
    {"body", &Notification::body},
    {"actorId", &Notification::actor_id},
    {"entityType", &Notification::entity_type},
    {"entityId", &Notification::entity_id},
    {"actionUrl", &Notification::action_url},
    {"imageUrl", &Notification::image_url},
    {"readAt", &Notification::read_at},
    {"createdAt", &Notification::created_at},
};

inline constexpr std::size_t string_field_count = std::size(string_fields);

// The problem named when `data` (or a member parse_notification() keeps) nests too deep.
inline std::string too_deep(std::size_t max_depth) {
  return "nested deeper than " + std::to_string(max_depth) + " levels";
}

}  // namespace notify::detail
