// Notification: the value type every part of notify passes around, its JSON form and its
// validation.
//
// Thread safety: a plain value; distinct objects are safe, a shared object is safe to read.
#pragma once

#include <notify/export.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace notify {

// One notification. Empty strings are "unset" and appear as null in JSON.
struct Notification {
  std::string id;          // assigned by the Store; opaque to clients
  std::string user_id;     // the recipient; empty for a broadcast
  bool broadcast = false;  // true: every user sees it
  std::string type;        // comment | mention | order | system | alert (hosts may allow more)
  std::string title;
  std::string body;
  std::string actor_id;
  std::string entity_type;
  std::string entity_id;
  std::string action_url;
  std::string image_url;
  std::string read_at;     // ISO 8601 UTC; empty while unread
  std::string created_at;  // ISO 8601 UTC with milliseconds; assigned by the Store
  nlohmann::json data;     // null or a free JSON object

  // Not part of the notification: neither stored with it nor sent to clients.
  // The publisher's name for this publish (1 to 255 bytes of printable ASCII, no spaces),
  // so that a publish whose outcome it does not know (a timeout, a lost answer, a crash
  // before it recorded the id) can be sent again: a store that keeps keys
  // (Store::keeps_idempotency_keys()) stores nothing for a key it already holds for the same
  // recipient (the user, or the broadcasts) and returns the first publish's id. Keys are
  // kept for the store's idempotency window (24 hours by default). A repeat whose content
  // differs from the first's is refused (see replay_differs).
  std::string idempotency_key;
  // Set by Store::append() on return: the key was known, nothing was stored, and `id` and
  // `created_at` are the first publish's.
  bool replayed = false;
  // Set with `replayed` when this draft's content (content_fingerprint()) is not the first
  // publish's: the key was used for another notification, a mistake of the publisher's that
  // the hub refuses (ValidationError on "idempotencyKey") rather than drop it silently.
  bool replay_differs = false;

  bool is_read() const noexcept { return !read_at.empty(); }
};

// camelCase JSON both ways. from_json throws ValidationError naming the field when a field
// has the wrong JSON type; it does not check limits (see validate()).
NOTIFY_EXPORT void to_json(nlohmann::json& j, const Notification& n);

// The same text as nlohmann::json(n).dump() (keys sorted, empty strings as null), written
// straight into `out` without building a JSON tree: the publish path calls it once per
// notification. Throws ValidationError for a field that is not valid UTF-8 (validate()
// rejects such drafts first).
NOTIFY_EXPORT void append_json(std::string& out, const Notification& n);
NOTIFY_EXPORT std::string to_json_text(const Notification& n);
NOTIFY_EXPORT void from_json(const nlohmann::json& j, Notification& n);

// A JSON text, a request body say, read straight into a draft: only `data` becomes a JSON
// tree. The same draft, the same ValidationError for the same input as
// nlohmann::json::parse(text).get<Notification>(), at a fraction of the cost; invalid JSON
// throws nlohmann::json::parse_error as parse() does. Members it does not know are skipped,
// or kept in `*others` (an object) when it is given, `data`'s nesting limit applying to them.
NOTIFY_EXPORT Notification parse_notification(std::string_view text,
                                              nlohmann::json* others = nullptr);

// The longest Notification::idempotency_key find_problem() accepts.
inline constexpr std::size_t max_idempotency_key_bytes = 255;

// How deep from_json() lets `data` nest, and ValidationLimits::max_data_depth's default.
inline constexpr std::size_t default_max_data_depth = 32;

// Limits a draft must respect. Sizes are bytes of UTF-8.
struct ValidationLimits {
  std::size_t max_title_bytes = 1024;      // a title is a line, not a document
  std::size_t max_body_bytes = 64 * 1024;  // keeps one event well under queue limits
  std::size_t max_field_bytes = 2048;      // ids, urls, entity fields
  std::size_t max_data_bytes = 64 * 1024;  // serialized `data`
  // Arrays and objects nested in `data`, the object itself counting 1. nlohmann::json copies,
  // compares and serializes a value recursively: a body of brackets nested a few hundred
  // thousand deep (well inside a 1 MiB request) would overflow the stack. from_json()
  // refuses deeper data with the default value, before it copies anything. Lower it to be
  // stricter; the hub refuses a higher value, as stores read notifications back with
  // from_json().
  std::size_t max_data_depth = default_max_data_depth;
  std::vector<std::string> allowed_types = {"comment", "mention", "order", "system", "alert"};
};

// A draft (or JSON) that breaks a rule. what() is "field: problem", e.g. "title: missing".
class NOTIFY_EXPORT ValidationError : public std::invalid_argument {
 public:
  ValidationError(std::string field, const std::string& problem);
  const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Returns the first problem of a draft as "field: problem", or nullopt when it is valid.
// Ids and timestamps are not checked: the store assigns them.
NOTIFY_EXPORT std::optional<std::string> find_problem(const Notification& draft,
                                                      const ValidationLimits& limits = {});

// Throws ValidationError for the first problem of find_problem().
NOTIFY_EXPORT void validate(const Notification& draft, const ValidationLimits& limits = {});

// "2026-11-28T08:00:00.123Z"
NOTIFY_EXPORT std::string format_timestamp(std::chrono::system_clock::time_point t);

}  // namespace notify
