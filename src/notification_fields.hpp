// The string members of a notification's JSON form, shared by from_json(), find_problem() and
// parse_notification(). The order is the one from_json() checks them in (its first problem is
// the one reported), not the order nlohmann::json writes them.
//
// Thread safety: constants.
#pragma once

#include <notify/notification.hpp>

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

}  // namespace notify::detail
