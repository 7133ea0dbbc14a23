#include "rows.hpp"

#include <string>

namespace notify::sqlite {

Notification read_notification(const Statement& row) {
  Notification n;
  n.id = std::to_string(row.int64(0));
  n.broadcast = row.is_null(1);
  n.user_id = row.text(1);
  n.type = row.text(2);
  n.title = row.text(3);
  n.body = row.text(4);
  n.actor_id = row.text(5);
  n.entity_type = row.text(6);
  n.entity_id = row.text(7);
  n.action_url = row.text(8);
  n.image_url = row.text(9);
  if (!row.is_null(10))
    n.data = nlohmann::json::parse(row.text(10));
  n.created_at = row.text(11);
  n.read_at = row.text(12);
  return n;
}

void bind_notification(Statement& insert, std::int64_t seq, const Notification& n,
                       std::int64_t created_ms) {
  insert.bind(1, seq);
  if (n.broadcast) {
    insert.bind_null(2);
  } else {
    insert.bind(2, n.user_id);
  }
  insert.bind(3, n.type);
  insert.bind(4, n.title);
  insert.bind(5, n.body);
  insert.bind(6, n.actor_id);
  insert.bind(7, n.entity_type);
  insert.bind(8, n.entity_id);
  insert.bind(9, n.action_url);
  insert.bind(10, n.image_url);
  if (n.data.is_null()) {
    insert.bind_null(11);
  } else {
    insert.bind(11, n.data.dump());
  }
  insert.bind(12, n.created_at);
  insert.bind(13, created_ms);
}

}  // namespace notify::sqlite
