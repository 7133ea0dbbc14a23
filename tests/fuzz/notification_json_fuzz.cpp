// libFuzzer target: a request body, as a host hands it to notify: parsed with nlohmann::json,
// converted with from_json(), validated with find_problem(), written with to_json_text().
//
// Checked: no crash or sanitizer report (deep nesting included: from_json() and
// find_problem() must refuse it before anything recurses into it); a draft find_problem()
// accepts is written byte for byte as nlohmann::json(draft).dump() writes it, and reads back
// as the same draft.
#include <notify/notification.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void check(bool ok, const char* what) {
  if (ok)
    return;
  std::fprintf(stderr, "notification_json_fuzz: invariant violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* text = reinterpret_cast<const char*>(data);
  const auto body = nlohmann::json::parse(text, text + size, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return 0;
  notify::Notification draft;
  try {
    draft = body.get<notify::Notification>();
  } catch (const notify::ValidationError&) {
    return 0;
  } catch (const nlohmann::json::exception&) {
    return 0;
  }
  notify::ValidationLimits limits;
  limits.allowed_types.push_back("fuzz");
  if (notify::find_problem(draft, limits))
    return 0;
  const auto written = notify::to_json_text(draft);
  check(written == nlohmann::json(draft).dump(), "to_json_text differs from dump()");
  const auto again = nlohmann::json::parse(written).get<notify::Notification>();
  check(to_json_text(again) == written, "the written draft does not read back the same");
  return 0;
}
