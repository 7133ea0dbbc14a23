#include <notify/sse.hpp>

#include "doubles.hpp"

#include <doctest/doctest.h>

#include <string>

using notify::sse::encode_event;

TEST_CASE("sse: encoding of data, table") {
  struct Row {
    std::string data;
    std::string wire;
    std::string reconstructed;  // what a WHATWG parser hands to the page
  };
  const Row rows[] = {
      {"hello", "data: hello\n\n", "hello"},
      {"a\nb", "data: a\ndata: b\n\n", "a\nb"},
      {"a\r\nb", "data: a\ndata: b\n\n", "a\nb"},
      {"a\rb", "data: a\ndata: b\n\n", "a\nb"},
      {"a\n\nb", "data: a\ndata: \ndata: b\n\n", "a\n\nb"},
      {"a\n", "data: a\ndata: \n\n", "a\n"},
      {"\n\n", "data: \ndata: \ndata: \n\n", "\n\n"},
      {"\r", "data: \ndata: \n\n", "\n"},
      {"\r\n", "data: \ndata: \n\n", "\n"},
      {"a\r", "data: a\ndata: \n\n", "a\n"},
      {"a\r\rb", "data: a\ndata: \ndata: b\n\n", "a\n\nb"},
      {"a\n\rb", "data: a\ndata: \ndata: b\n\n", "a\n\nb"},
      {"\ra\r\nb\nc", "data: \ndata: a\ndata: b\ndata: c\n\n", "\na\nb\nc"},
      {"data: x", "data: data: x\n\n", "data: x"},
      {" leading space", "data:  leading space\n\n", " leading space"},
      {": not a comment", "data: : not a comment\n\n", ": not a comment"},
      {"h\xC3\xA9llo \xF0\x9F\x94\x94", "data: h\xC3\xA9llo \xF0\x9F\x94\x94\n\n",
       "h\xC3\xA9llo \xF0\x9F\x94\x94"},
  };
  for (const auto& row : rows) {
    CAPTURE(row.data);
    const auto wire = encode_event("", "", row.data);
    CHECK(wire == row.wire);
    const auto events = test::parse_sse(wire);
    REQUIRE(events.size() == 1);
    CHECK(events[0].data == row.reconstructed);
    CHECK(events[0].type == "message");
  }
}

TEST_CASE("sse: id and event fields") {
  CHECK(encode_event("notification", "42", "{}") == "id: 42\nevent: notification\ndata: {}\n\n");
  CHECK(encode_event("message", "", "x") == "data: x\n\n");
  const auto events = test::parse_sse(encode_event("notification", "7", "{\"a\":1}"));
  REQUIRE(events.size() == 1);
  CHECK(events[0].id == "7");
  CHECK(events[0].type == "notification");
  CHECK(events[0].data == "{\"a\":1}");
}

TEST_CASE("sse: ids and event names with CR, LF or NUL are refused") {
  CHECK(notify::sse::is_valid_id("abc-123"));
  CHECK(notify::sse::is_valid_id(""));
  CHECK_FALSE(notify::sse::is_valid_id("a\nb"));
  CHECK_FALSE(notify::sse::is_valid_id("a\rb"));
  CHECK_FALSE(notify::sse::is_valid_id(std::string("a\0b", 3)));
  CHECK_THROWS_WITH_AS(encode_event("x", "1\n2", "d"), "sse: an id must not contain CR, LF or NUL",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(encode_event("bad\nname", "", "d"),
                       "sse: an event name must not contain CR, LF or NUL", std::invalid_argument);
}

TEST_CASE("sse: 64 KiB of data with line breaks survives") {
  std::string data;
  for (int i = 0; data.size() < 64 * 1024; ++i) {
    data += "line " + std::to_string(i);
    data += (i % 3 == 0) ? "\r\n" : (i % 3 == 1 ? "\n" : "\r");
  }
  data += "end";
  std::string expected;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\r') {
      expected += '\n';
      if (i + 1 < data.size() && data[i + 1] == '\n')
        ++i;
    } else {
      expected += data[i];
    }
  }
  const auto events = test::parse_sse(encode_event("big", "1", data));
  REQUIRE(events.size() == 1);
  CHECK(events[0].data == expected);
}

TEST_CASE("sse: comments, retry and the response head") {
  std::string out;
  notify::sse::append_comment(out, "hb");
  CHECK(out == ": hb\n\n");
  out.clear();
  notify::sse::append_retry(out, std::chrono::milliseconds(1500));
  CHECK(out == "retry: 1500\n\n");
  const auto head = std::string(notify::sse::response_head());
  CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(head.find("Content-Type: text/event-stream; charset=utf-8\r\n") != std::string::npos);
  CHECK(head.find("Cache-Control: no-cache\r\n") != std::string::npos);
  CHECK(head.find("Connection: keep-alive\r\n") != std::string::npos);
  CHECK(head.find("X-Accel-Buffering: no\r\n") != std::string::npos);
}
