#include <notify/store.hpp>

#include <charconv>
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

namespace notify {

Store::~Store() = default;

std::vector<Notification> Store::append_all(std::vector<Notification> drafts) {
  for (auto& draft : drafts)
    draft = append(std::move(draft));
  return drafts;
}

std::vector<Snapshot> Store::snapshot_many(const std::vector<std::string>& users,
                                           std::size_t limit) {
  std::vector<Snapshot> answers;
  answers.reserve(users.size());
  for (const auto& user : users)
    answers.push_back(snapshot(user, limit));
  return answers;
}

std::vector<std::optional<Resume>> Store::resume_many(const std::vector<ResumeQuery>& queries,
                                                      std::size_t limit, std::size_t max_missed) {
  std::vector<std::optional<Resume>> answers;
  answers.reserve(queries.size());
  for (const auto& q : queries)
    answers.push_back(resume(q.user, q.cursor, limit, max_missed));
  return answers;
}

std::vector<ReadResult> Store::mark_many(const std::vector<MarkQuery>& marks) {
  std::vector<ReadResult> answers;
  answers.reserve(marks.size());
  for (const auto& m : marks)
    answers.push_back(m.id ? mark_read(m.user, *m.id) : mark_all_read(m.user));
  return answers;
}

void check_idempotency_window(std::chrono::milliseconds window, std::string_view store) {
  if (window.count() <= 0 || window > max_idempotency_window)
    throw std::invalid_argument(std::string(store) +
                                ": idempotency_window must be above 0 and at most "
                                "max_idempotency_window");
}

std::uint64_t content_fingerprint(const Notification& draft) {
  // FNV-1a: stable across processes and builds (stores keep the value), and what it must
  // catch is a publisher's mistake, not an attack.
  constexpr std::uint64_t prime = 1099511628211ull;
  std::uint64_t hash = 14695981039346656037ull;
  const auto mix = [&hash](std::string_view text) {
    // The length first, so that two lists of fields cannot run together into one.
    auto size = static_cast<std::uint64_t>(text.size());
    for (int i = 0; i < 8; ++i, size >>= 8)
      hash = (hash ^ (size & 0xff)) * prime;
    for (const unsigned char c : text)
      hash = (hash ^ c) * prime;
  };
  for (const auto* field :
       {&draft.type, &draft.title, &draft.body, &draft.actor_id, &draft.entity_type,
        &draft.entity_id, &draft.action_url, &draft.image_url})
    mix(*field);
  // Keys sorted (nlohmann::json's std::map), so equal data dumps to equal text.
  mix(draft.data.is_null() || draft.data.empty() ? std::string() : draft.data.dump());
  return hash;
}

std::uint64_t sequence_floor_now() noexcept {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now).count());
}

std::optional<std::uint64_t> parse_sequence(std::string_view text) noexcept {
  if (text.empty() || text.size() > 20)
    return std::nullopt;
  std::uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end)
    return std::nullopt;
  return value;
}

}  // namespace notify
