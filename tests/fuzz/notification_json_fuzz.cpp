// libFuzzer target: a request body, as a host hands it to notify: read by parse_notification(),
// and parsed with nlohmann::json then converted with from_json(), validated with
// find_problem(), written with to_json_text().
//
// Checked: parse_notification() reads every input as parse() then from_json() do (the same
// draft, or the same error); no crash or sanitizer report (deep nesting included: from_json() and
// find_problem() must refuse it before anything recurses into it); a draft find_problem()
// accepts is written byte for byte as nlohmann::json(draft).dump() writes it, and reads back
// as the same draft.
#include <notify/notification.hpp>

#include "invariant.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using fuzz::check;

// parse_notification()'s outcome: the draft's JSON text, or the error.
std::string parsed(std::string_view text) {
  try {
    return "ok " + nlohmann::json(notify::parse_notification(text)).dump();
  } catch (const std::exception& e) {
    return std::string("error ") + e.what();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto* text = reinterpret_cast<const char*>(data);
  const auto direct = parsed(std::string_view(text, size));
  const auto body = nlohmann::json::parse(text, text + size, nullptr, false);
  if (body.is_discarded()) {
    check(direct.rfind("error ", 0) == 0, "parse_notification accepted invalid JSON");
    return 0;
  }
  notify::Notification draft;
  try {
    draft = body.get<notify::Notification>();
  } catch (const std::exception& e) {
    check(direct == std::string("error ") + e.what(), "parse_notification failed otherwise");
    return 0;
  }
  check(direct == "ok " + nlohmann::json(draft).dump(), "parse_notification read otherwise");
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
