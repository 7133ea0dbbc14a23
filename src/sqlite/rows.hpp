// The mapping between a Notification and a row of the `notifications` table.
//
// Thread safety: pure functions over the statement they are given.
#pragma once

#include "database.hpp"

#include <notify/notification.hpp>

#include <cstdint>
#include <string_view>

namespace notify::sqlite {

// The columns read_notification() expects, in this order.
inline constexpr std::string_view notification_columns =
    "seq, user_id, type, title, body, actor_id, entity_type, entity_id, action_url, "
    "image_url, data, created_at";

// Reads those 12 columns, and the read state from column 12.
Notification read_notification(const Statement& row);

// Binds `n` to ?1..?13 of the INSERT: seq, user_id (NULL for a broadcast), the text fields,
// data (JSON text or NULL), created_at and created_ms.
void bind_notification(Statement& insert, std::int64_t seq, const Notification& n,
                       std::int64_t created_ms);

}  // namespace notify::sqlite
