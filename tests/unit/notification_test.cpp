#include <notify/notification.hpp>

#include <doctest/doctest.h>

#include <iterator>
#include <optional>
#include <string>
#include <vector>

using nlohmann::json;
using notify::Notification;

namespace {
Notification valid() {
  Notification n;
  n.user_id = "alice";
  n.type = "comment";
  n.title = "New comment";
  return n;
}
}  // namespace

TEST_CASE("notification: JSON both ways in camelCase") {
  auto n = valid();
  n.id = "12";
  n.body = "body";
  n.actor_id = "bob";
  n.entity_type = "post";
  n.entity_id = "7";
  n.action_url = "/posts/7";
  n.created_at = "2026-11-28T08:00:00.123Z";
  n.data = json{{"k", 1}};
  const json j = n;
  CHECK(j["id"] == "12");
  CHECK(j["userId"] == "alice");
  CHECK(j["actorId"] == "bob");
  CHECK(j["entityType"] == "post");
  CHECK(j["entityId"] == "7");
  CHECK(j["actionUrl"] == "/posts/7");
  CHECK(j["imageUrl"].is_null());
  CHECK(j["readAt"].is_null());
  CHECK(j["createdAt"] == "2026-11-28T08:00:00.123Z");
  CHECK(j["data"]["k"] == 1);
  CHECK_FALSE(j.contains("broadcast"));
  const auto back = j.get<Notification>();
  CHECK(back.id == n.id);
  CHECK(back.user_id == n.user_id);
  CHECK(back.action_url == n.action_url);
  CHECK(back.data == n.data);
}

TEST_CASE("notification: a broadcast has no userId") {
  auto n = valid();
  n.user_id.clear();
  n.broadcast = true;
  const json j = n;
  CHECK(j["broadcast"] == true);
  CHECK_FALSE(j.contains("userId"));
}

TEST_CASE("notification: from_json refuses data nested too deep, before copying it") {
  const std::size_t depth = 500 * 1000;  // a recursive copy of this overflows the stack
  const auto j = json::parse(R"({"userId":"a","type":"comment","title":"t","data":{"a":)" +
                             std::string(depth, '[') + std::string(depth, ']') + "}}");
  CHECK_THROWS_WITH_AS(j.get<Notification>(), "data: nested deeper than 32 levels",
                       notify::ValidationError);
  const auto shallow =
      json::parse(R"({"userId":"a","type":"comment","title":"t","data":{"a":{"b":[1,[2,[3]]]}}})");
  CHECK(shallow.get<Notification>().data == shallow["data"]);
}

namespace {
// What from_json() makes of a JSON text: the draft as its JSON text, or the error's message.
std::string via_tree(const std::string& text) {
  try {
    return notify::to_json_text(json::parse(text).get<Notification>());
  } catch (const std::exception& e) {
    return std::string("error: ") + e.what();
  }
}

std::string via_parser(const std::string& text) {
  try {
    return notify::to_json_text(notify::parse_notification(text));
  } catch (const std::exception& e) {
    return std::string("error: ") + e.what();
  }
}
}  // namespace

TEST_CASE("notification: parse_notification reads what from_json reads, errors included") {
  const std::string deep = std::string(31, '[') + std::string(31, ']');
  const std::vector<std::string> texts = {
      R"({"userId":"u1","type":"comment","title":"hello","data":{"t":1}})",
      R"({"id":"9","userId":"u","type":"t","title":"a","body":"b","actorId":"c","entityType":"d",)"
      R"("entityId":"e","actionUrl":"f","imageUrl":"g","readAt":"h","createdAt":"i"})",
      R"({"broadcast":true,"type":"system","title":"all","data":{}})",
      R"({"broadcast":false,"broadcast":null,"title":"x"})",
      R"({"title":"first","title":"second","data":{"a":1},"data":null})",
      R"({"data":{"a":{"b":[1,2.5,-3,true,null,"s",{"c":{}}],"a":"again"}},"unknown":[1,{"x":2}]})",
      R"({"title":null,"body":null,"data":null})",
      R"({"title":5})",
      R"({"title":[1,[2]],"body":{"x":1}})",
      R"({"body":5,"title":false})",  // from_json names the first field in its order
      R"({"broadcast":"yes"})",
      R"({"broadcast":[true]})",
      R"({"data":[1]})",
      R"({"data":"x"})",
      R"({"data":5,"title":7})",
      R"({"title":"ok","title":7})",
      R"({"title":7,"title":"ok"})",
      R"({"data":{"a":)" + deep + "}}",                 // 32 levels: accepted
      R"({"data":{"a":[)" + deep + "]}}",               // 33
      R"({"data":{"a":[)" + deep + R"(]},"data":{}})",  // refused, then replaced
      R"([1,2])",
      R"("text")",
      R"(42)",
      R"({})",
      R"({"title":"\u00e9\ud83d\ude00 \"q\" \\ \n"})",
      R"({"title":"x",})",
      R"({"title":"x"} trailing)",
      R"({"title":"x")",
      "",
      R"({"n":1e999})",
      R"({"data":{"n":18446744073709551615,"m":-9223372036854775808,"f":1e-300}})",
  };
  for (const auto& text : texts) {
    CAPTURE(text);
    CHECK(via_parser(text) == via_tree(text));
  }
  // Not only equal: right.
  CHECK(via_parser(texts[0]) == notify::to_json_text(json::parse(texts[0]).get<Notification>()));
  CHECK(json::parse(via_parser(texts[4]))["title"] == "second");
  CHECK(via_parser(R"({"body":5,"title":false})") == "error: title: must be a string");
  CHECK(via_parser(R"([1,2])") == "error: notification: must be a JSON object");
  CHECK(via_parser(R"({"data":{"a":[)" + deep + "]}}") ==
        "error: data: nested deeper than 32 levels");
}

TEST_CASE("notification: parse_notification keeps the other members when asked") {
  json others;
  const auto n = notify::parse_notification(
      R"({"userIds":["a","b"],"title":"t","type":"comment","x":{"y":[1,{"z":null}]},"k":3})",
      &others);
  CHECK(n.title == "t");
  CHECK(others == json{{"userIds", {"a", "b"}}, {"x", {{"y", {1, {{"z", nullptr}}}}}}, {"k", 3}});
  const std::string deep = std::string(40, '[') + std::string(40, ']');
  CHECK_THROWS_WITH_AS(notify::parse_notification(R"({"title":"t","x":)" + deep + "}", &others),
                       "x: nested deeper than 32 levels", notify::ValidationError);
  CHECK_NOTHROW(notify::parse_notification(R"({"title":"t","x":)" + deep + "}"));  // skipped
  CHECK_THROWS_AS(notify::parse_notification("{nope", &others), json::parse_error);
  // 500,000 levels read without recursion, then refused.
  const std::string very_deep = std::string(500000, '[') + std::string(500000, ']');
  CHECK_THROWS_WITH_AS(notify::parse_notification(R"({"data":{"a":)" + very_deep + "}}"),
                       "data: nested deeper than 32 levels", notify::ValidationError);
}

TEST_CASE("notification: JSON with wrong types names the field") {
  CHECK_THROWS_WITH_AS(json::parse(R"({"title":5})").get<Notification>(), "title: must be a string",
                       notify::ValidationError);
  CHECK_THROWS_WITH_AS(json::parse(R"({"data":[1]})").get<Notification>(),
                       "data: must be a JSON object", notify::ValidationError);
  CHECK_THROWS_WITH_AS(json::parse(R"({"broadcast":"yes"})").get<Notification>(),
                       "broadcast: must be true or false", notify::ValidationError);
  CHECK_THROWS_WITH_AS(json::parse("[]").get<Notification>(), "notification: must be a JSON object",
                       notify::ValidationError);
}

TEST_CASE("notification: validation messages") {
  notify::ValidationLimits limits;
  auto problem = [&](auto change) {
    auto n = valid();
    change(n);
    return notify::find_problem(n, limits).value_or("");
  };
  CHECK(problem([](Notification&) {}) == "");
  CHECK(problem([](Notification& n) { n.title.clear(); }) == "title: missing");
  CHECK(problem([](Notification& n) { n.type.clear(); }) == "type: missing");
  CHECK(problem([](Notification& n) { n.type = "spam"; }) ==
        "type: 'spam' is not one of comment, mention, order, system, alert");
  CHECK(problem([](Notification& n) { n.title = std::string(1025, 'x'); }) ==
        "title: longer than 1024 bytes");
  CHECK(problem([](Notification& n) { n.body = std::string(64 * 1024 + 1, 'x'); }) ==
        "body: longer than 65536 bytes");
  CHECK(problem([](Notification& n) { n.user_id.clear(); }) == "userId: missing");
  CHECK(problem([](Notification& n) { n.action_url = std::string(3000, 'u'); }) ==
        "actionUrl: longer than 2048 bytes");
  CHECK(problem([](Notification& n) { n.data = json::array(); }) == "data: must be a JSON object");
  CHECK(problem([](Notification& n) { n.idempotency_key = "01JD4Z8Q:order-42/shipped~1"; }) == "");
  CHECK(problem([](Notification& n) { n.idempotency_key = std::string(255, 'k'); }) == "");
  CHECK(problem([](Notification& n) { n.idempotency_key = std::string(256, 'k'); }) ==
        "idempotencyKey: longer than 255 bytes");
  const std::vector<std::string> bad_keys = {"order 42", "tab\there", "caf\xc3\xa9", "del\x7f",
                                             std::string("nul\0x", 5)};
  for (const auto& bad : bad_keys) {
    CAPTURE(bad);
    CHECK(problem([&](Notification& n) { n.idempotency_key = bad; }) ==
          "idempotencyKey: may hold only printable ASCII without spaces");
  }
  // It is no part of the notification's JSON.
  auto keyed = valid();
  keyed.idempotency_key = "k";
  CHECK(json(keyed).dump() == json(valid()).dump());
  CHECK(notify::to_json_text(keyed) == notify::to_json_text(valid()));
  auto nested = [](std::size_t depth) {  // {"a":[[...]]}: `depth` arrays and objects in all
    return json::parse("{\"a\":" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}");
  };
  CHECK(problem([&](Notification& n) { n.data = nested(32); }) == "");
  CHECK(problem([&](Notification& n) { n.data = nested(33); }) ==
        "data: nested deeper than 32 levels");
  // The size is exact, whatever the quick bound says: 16 bytes pass a limit of 16, 17 do not.
  limits.max_data_bytes = 16;
  CHECK(problem([](Notification& n) { n.data = {{"k", "01234567"}}; }) == "");
  CHECK(problem([](Notification& n) {
          n.data = {{"k", "012345678"}};
        }) == "data: larger than 16 bytes");
  CHECK(problem([](Notification& n) { n.data = {{"k", "\n\n"}}; }) == "");  // {"k":"\n\n"}
  CHECK(problem([](Notification& n) {
          n.data = {{"k", std::string(6, '\x01')}};
        }) == "data: larger than 16 bytes");  // each byte a 6-byte escape
  limits.max_data_bytes = 64 * 1024;
  limits.allowed_types.push_back("billing");
  CHECK(problem([](Notification& n) { n.type = "billing"; }) == "");

  auto n = valid();
  n.title.clear();
  CHECK_THROWS_WITH_AS(notify::validate(n), "title: missing", notify::ValidationError);
  try {
    notify::validate(n);
  } catch (const notify::ValidationError& e) {
    CHECK(e.field() == "title");
  }
}

TEST_CASE("notification: timestamps are ISO 8601 UTC with milliseconds") {
  using namespace std::chrono;
  const auto t = system_clock::time_point(milliseconds(1764316800123LL));
  CHECK(notify::format_timestamp(t) == "2025-11-28T08:00:00.123Z");
  CHECK(notify::format_timestamp(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("notification: timestamps in one second share the cached date, across seconds not") {
  using namespace std::chrono;
  const auto base = milliseconds(1764316800000LL);
  CHECK(notify::format_timestamp(system_clock::time_point(base + milliseconds(7))) ==
        "2025-11-28T08:00:00.007Z");
  CHECK(notify::format_timestamp(system_clock::time_point(base + milliseconds(999))) ==
        "2025-11-28T08:00:00.999Z");
  CHECK(notify::format_timestamp(system_clock::time_point(base + milliseconds(1000))) ==
        "2025-11-28T08:00:01.000Z");
  CHECK(notify::format_timestamp(system_clock::time_point(base - milliseconds(1))) ==
        "2025-11-28T07:59:59.999Z");
  CHECK(notify::format_timestamp(system_clock::time_point(base + hours(24 * 3))) ==
        "2025-12-01T08:00:00.000Z");
}

TEST_CASE("notification: to_json_text writes what nlohmann::json(n).dump() writes") {
  // Strings with every kind of byte JSON escapes or keeps, in every string field.
  const std::vector<std::string> texts = {
      "",
      "plain",
      "quote \" backslash \\ slash /",
      std::string("controls \x01\x02\x1f\x7f tab\t nl\n cr\r bs\b ff\f nul") + std::string(1, '\0'),
      "unicode \xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80",
      "</script><!--",
  };
  std::string Notification::*fields[] = {
      &Notification::id,          &Notification::user_id,   &Notification::type,
      &Notification::title,       &Notification::body,      &Notification::actor_id,
      &Notification::entity_type, &Notification::entity_id, &Notification::action_url,
      &Notification::image_url,   &Notification::read_at,   &Notification::created_at,
  };
  const std::vector<json> datas = {json(), json::object(),
                                   json{{"b", 1}, {"a", {{"nested", "x\"y"}}}, {"u", "\xC3\xA9"}}};
  int compared = 0;
  for (bool broadcast : {false, true}) {
    for (const auto& data : datas) {
      for (std::size_t f = 0; f < std::size(fields); ++f) {
        for (const auto& text : texts) {
          auto n = valid();
          n.broadcast = broadcast;
          n.data = data;
          n.*(fields[f]) = text;
          n.*(fields[(f + 5) % std::size(fields)]) = texts[(f + 2) % texts.size()];
          CHECK(notify::to_json_text(n) == json(n).dump());
          ++compared;
        }
      }
    }
  }
  CHECK(compared == 2 * 3 * 12 * 6);

  auto bad = valid();
  bad.body = "broken \xC3";
  CHECK_THROWS_WITH_AS(notify::to_json_text(bad), "body: is not valid UTF-8",
                       notify::ValidationError);
  CHECK_THROWS_AS(json(bad).dump(), json::type_error);
  CHECK(notify::find_problem(bad) == std::optional<std::string>("body: is not valid UTF-8"));
}
