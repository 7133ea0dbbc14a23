#include "ws_test_support.hpp"

#include <notify/event.hpp>
#include <notify/ws_frame.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace notify::ws;
using test::ws::client_frame;
using test::ws::close_payload;
using test::ws::decode;
using test::ws::first_byte;
using test::ws::hex;
using test::ws::LengthForm;

namespace {

std::string repeat(char c, std::size_t n) {
  return std::string(n, c);
}

// Decodes `stream` whole, then byte by byte, then in pieces of 2, 3 and 7 bytes, and checks
// that every way gives the same outcome; returns the whole one.
test::ws::Outcome decode_every_way(std::string_view stream, DecoderLimits limits = {}) {
  Decoder whole_decoder(limits);
  const auto whole = decode(whole_decoder, stream, 0);
  for (const std::size_t piece : {1, 2, 3, 7}) {
    CAPTURE(piece);
    Decoder decoder(limits);
    const auto split = decode(decoder, stream, piece);
    CHECK(test::ws::same_messages(split.messages, whole.messages));
    CHECK(split.error == whole.error);
  }
  return whole;
}

}  // namespace

// --- encoding ------------------------------------------------------------------------------

TEST_CASE("ws encode: RFC 6455 section 5.7 examples and length encodings") {
  CHECK(text_frame("Hello") == hex("81 05 48 65 6c 6c 6f"));
  CHECK(ping_frame("Hello") == hex("89 05 48 65 6c 6c 6f"));
  CHECK(pong_frame("Hello") == hex("8a 05 48 65 6c 6c 6f"));
  std::string fragmented;
  append_frame(fragmented, Opcode::text, "Hel", false);
  append_frame(fragmented, Opcode::continuation, "lo", true);
  CHECK(fragmented == hex("01 03 48 65 6c 80 02 6c 6f"));

  struct Row {
    std::size_t size;
    std::string header;
  };
  const Row rows[] = {
      {0, hex("82 00")},
      {125, hex("82 7d")},
      {126, hex("82 7e 00 7e")},
      {256, hex("82 7e 01 00")},  // RFC 6455 5.7: 256 bytes binary
      {65535, hex("82 7e ff ff")},
      {65536, hex("82 7f 00 00 00 00 00 01 00 00")},  // RFC 6455 5.7: 64 KiB binary
  };
  for (const auto& row : rows) {
    CAPTURE(row.size);
    const std::string payload(row.size, 'x');
    const auto frame = binary_frame(payload);
    CHECK(frame.substr(0, row.header.size()) == row.header);
    CHECK(frame.size() == row.header.size() + row.size);
    CHECK(frame_header_size(row.size) == row.header.size());
  }
  std::string compressed;
  append_frame(compressed, Opcode::text, "x", true, true);
  CHECK(compressed == hex("c1 01 78"));
}

TEST_CASE("ws encode: close frames") {
  CHECK(close_frame(CloseCode::normal) == hex("88 02 03 e8"));
  CHECK(close_frame(CloseCode::going_away, "bye") == hex("88 05 03 e9 62 79 65"));
  CHECK(close_frame(CloseCode::no_status) == hex("88 00"));
  CHECK(close_frame(static_cast<CloseCode>(4000), "app") == hex("88 05 0f a0 61 70 70"));

  // The reason is cut to 123 bytes, never inside a character.
  const std::string ascii(200, 'a');
  auto frame = close_frame(CloseCode::policy_violation, ascii);
  CHECK(frame.size() == 2 + 125);
  CHECK(frame.substr(4) == ascii.substr(0, 123));
  const std::string cut_in_char = std::string(122, 'a') + "\xC3\xA9";  // é spans bytes 123-124
  frame = close_frame(CloseCode::policy_violation, cut_in_char);
  CHECK(frame.substr(4) == std::string(122, 'a'));
  const std::string euro = std::string(121, 'a') + "\xE2\x82\xAC" + "zz";  // € spans 122-124
  frame = close_frame(CloseCode::policy_violation, euro);
  CHECK(frame.substr(4) == std::string(121, 'a'));
  const std::string fits = std::string(120, 'a') + "\xE2\x82\xAC";  // exactly 123
  frame = close_frame(CloseCode::policy_violation, fits);
  CHECK(frame.substr(4) == fits);
}

TEST_CASE("ws encode: misuse throws") {
  std::string out;
  CHECK_THROWS_AS(append_frame(out, static_cast<Opcode>(3), "x"), std::invalid_argument);
  CHECK_THROWS_AS(append_frame(out, Opcode::ping, "x", false), std::invalid_argument);
  CHECK_THROWS_AS(append_frame(out, Opcode::ping, "x", true, true), std::invalid_argument);
  CHECK_THROWS_AS(append_frame(out, Opcode::continuation, "x", true, true), std::invalid_argument);
  CHECK_THROWS_AS(ping_frame(repeat('x', 126)), std::invalid_argument);
  CHECK_NOTHROW(ping_frame(repeat('x', 125)));
  CHECK_THROWS_AS(close_frame(CloseCode::no_status, "why"), std::invalid_argument);
  CHECK_THROWS_AS(close_frame(static_cast<CloseCode>(1006)), std::invalid_argument);
  CHECK_THROWS_AS(close_frame(static_cast<CloseCode>(999)), std::invalid_argument);
  CHECK_THROWS_AS(close_frame(CloseCode::normal, "\xFF"), std::invalid_argument);
  CHECK(out.empty());
}

TEST_CASE("ws: close codes allowed on the wire") {
  for (unsigned code = 0; code <= 0xFFFF; ++code) {
    const bool expected = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                          (code >= 3000 && code <= 4999);
    if (is_valid_close_code(static_cast<std::uint16_t>(code)) != expected) {
      FAIL("close code " << code);
    }
  }
}

// --- decoding valid streams ----------------------------------------------------------------

TEST_CASE("ws decode: RFC 6455 section 5.7 examples, masked") {
  struct Row {
    const char* name;
    std::string stream;
    std::vector<Message> expected;
  };
  const std::string b256(256, '\x5a');
  const std::string b64k(65536, '\xa5');
  std::string many;
  std::vector<Message> many_expected;
  for (int i = 0; i < 20; ++i) {
    const std::string text = "message " + std::to_string(i);
    many += client_frame(Opcode::text, text);
    many_expected.push_back({Opcode::text, text, 0});
  }
  const Row rows[] = {
      {"single-frame masked text",
       hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"),
       {{Opcode::text, "Hello", 0}}},
      {"fragmented text",
       hex("01 83 37 fa 21 3d 7f 9f 4d 80 82 37 fa 21 3d 5b 95"),
       {{Opcode::text, "Hello", 0}}},
      {"masked ping", hex("89 85 37 fa 21 3d 7f 9f 4d 51 58"), {{Opcode::ping, "Hello", 0}}},
      {"masked pong", hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), {{Opcode::pong, "Hello", 0}}},
      {"256 bytes binary", client_frame(Opcode::binary, b256), {{Opcode::binary, b256, 0}}},
      {"64 KiB binary", client_frame(Opcode::binary, b64k), {{Opcode::binary, b64k, 0}}},
      {"empty text", client_frame(Opcode::text, ""), {{Opcode::text, "", 0}}},
      {"empty fragments",
       client_frame(Opcode::text, "", false) + client_frame(Opcode::continuation, "", false) +
           client_frame(Opcode::continuation, "", true),
       {{Opcode::text, "", 0}}},
      {"non-minimal 16-bit length",
       client_frame(first_byte(Opcode::text), "Hello", test::ws::rfc_mask, LengthForm::form16),
       {{Opcode::text, "Hello", 0}}},
      {"non-minimal 64-bit length",
       client_frame(first_byte(Opcode::text), "Hello", test::ws::rfc_mask, LengthForm::form64),
       {{Opcode::text, "Hello", 0}}},
      {"zero mask",
       client_frame(first_byte(Opcode::binary), "abc", {0, 0, 0, 0}),
       {{Opcode::binary, "abc", 0}}},
      {"ping between fragments",
       client_frame(Opcode::text, "Hel", false) + client_frame(Opcode::ping, "p") +
           client_frame(Opcode::continuation, "lo", true),
       {{Opcode::ping, "p", 0}, {Opcode::text, "Hello", 0}}},
      {"pong and close between fragments",
       client_frame(Opcode::binary, "a", false) + client_frame(Opcode::pong, "") +
           client_frame(Opcode::continuation, "b", false) +
           client_frame(Opcode::close, close_payload(1000, "done")),
       {{Opcode::pong, "", 0}, {Opcode::close, "done", 1000}}},
      {"control frames of 125 bytes",
       client_frame(Opcode::ping, repeat('p', 125)),
       {{Opcode::ping, repeat('p', 125), 0}}},
      {"close without payload", client_frame(Opcode::close, ""), {{Opcode::close, "", 0}}},
      {"close with code only",
       client_frame(Opcode::close, close_payload(1001)),
       {{Opcode::close, "", 1001}}},
      {"close with UTF-8 reason",
       client_frame(Opcode::close, close_payload(4999, "\xC3\xA9t\xC3\xA9")),
       {{Opcode::close, "\xC3\xA9t\xC3\xA9", 4999}}},
      {"twenty messages in one stream", many, many_expected},
      {"UTF-8 character split across fragments",
       client_frame(Opcode::text, "\xF0\x9F", false) +
           client_frame(Opcode::continuation, "\x94", false) +
           client_frame(Opcode::continuation, "\x94!", true),
       {{Opcode::text, "\xF0\x9F\x94\x94!", 0}}},
      {"binary is not UTF-8 checked",
       client_frame(Opcode::binary, "\xFF\xFE"),
       {{Opcode::binary, "\xFF\xFE", 0}}},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto outcome = decode_every_way(row.stream);
    CHECK_FALSE(outcome.error.has_value());
    CHECK(test::ws::same_messages(outcome.messages, row.expected));
  }
}

TEST_CASE("ws decode: every allowed close code is delivered") {
  for (const std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                                   1014, 3000, 3999, 4000, 4999}) {
    CAPTURE(code);
    Decoder decoder;
    std::vector<Message> out;
    CHECK_FALSE(decoder.feed(client_frame(Opcode::close, close_payload(code, "r")), out));
    REQUIRE(out.size() == 1);
    CHECK(out[0].close_code == code);
    CHECK(out[0].payload == "r");
    CHECK(decoder.closed());
  }
}

TEST_CASE("ws decode: bytes after a close are ignored") {
  Decoder decoder;
  std::vector<Message> out;
  const auto stream = client_frame(Opcode::close, close_payload(1000)) +
                      client_frame(Opcode::text, "late") + "\xFF\xFF garbage";
  CHECK_FALSE(decoder.feed(stream, out));
  CHECK_FALSE(decoder.feed("more garbage", out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].opcode == Opcode::close);
}

TEST_CASE("ws decode: the limit is inclusive and counts every fragment") {
  DecoderLimits limits;
  limits.max_message_bytes = 100;
  auto outcome = decode_every_way(client_frame(Opcode::binary, repeat('a', 100)), limits);
  CHECK_FALSE(outcome.error);
  REQUIRE(outcome.messages.size() == 1);
  CHECK(outcome.messages[0].payload.size() == 100);

  outcome = decode_every_way(client_frame(Opcode::text, repeat('a', 60), false) +
                                 client_frame(Opcode::ping, repeat('p', 120)) +
                                 client_frame(Opcode::continuation, repeat('b', 40), true),
                             limits);
  CHECK_FALSE(outcome.error);
  CHECK(outcome.messages.size() == 2);

  // Two messages of 100 each: the count starts again with each message.
  outcome = decode_every_way(
      client_frame(Opcode::text, repeat('a', 100)) + client_frame(Opcode::text, repeat('b', 100)),
      limits);
  CHECK_FALSE(outcome.error);
  CHECK(outcome.messages.size() == 2);
}

// --- violations ----------------------------------------------------------------------------

TEST_CASE("ws decode: violations, each failing on the byte that decides it") {
  struct Row {
    std::string name;
    std::string stream;
    CloseCode code;
    std::size_t decided_by;     // bytes fed when the error is returned (feeding one at a time)
    std::size_t delivered = 0;  // messages completed before the violation
  };
  const auto hello = client_frame(Opcode::text, "Hello");  // 11 bytes
  std::vector<Row> rows = {
      {"unmasked frame", hex("81 05 48 65 6c 6c 6f"), CloseCode::protocol_error, 2},
      {"RSV1 without permessage-deflate", client_frame(Opcode::text, "x", true, true),
       CloseCode::protocol_error, 1},
      {"RSV2", client_frame(0x80 | 0x20 | 0x1, "x"), CloseCode::protocol_error, 1},
      {"RSV3", client_frame(0x80 | 0x10 | 0x1, "x"), CloseCode::protocol_error, 1},
      {"continuation with no message open", client_frame(Opcode::continuation, "x"),
       CloseCode::protocol_error, 1},
      {"continuation after a complete message", hello + client_frame(Opcode::continuation, "x"),
       CloseCode::protocol_error, 12, 1},
      {"text while a fragmented message is open",
       client_frame(Opcode::text, "a", false) + client_frame(Opcode::text, "b"),
       CloseCode::protocol_error, 8},
      {"binary while a fragmented text is open",
       client_frame(Opcode::text, "a", false) + client_frame(Opcode::binary, "b", false),
       CloseCode::protocol_error, 8},
      {"fragmented ping", client_frame(Opcode::ping, "x", false), CloseCode::protocol_error, 1},
      {"fragmented close", client_frame(Opcode::close, "", false), CloseCode::protocol_error, 1},
      {"ping of 126 bytes", client_frame(Opcode::ping, repeat('p', 126)), CloseCode::protocol_error,
       2},
      {"ping with a 16-bit length of 5",
       client_frame(first_byte(Opcode::ping), "Hello", test::ws::rfc_mask, LengthForm::form16),
       CloseCode::protocol_error, 2},
      {"close of 126 bytes", client_frame(Opcode::close, close_payload(1000, repeat('r', 124))),
       CloseCode::protocol_error, 2},
      {"64-bit length with the top bit set", hex("82 ff 80 00 00 00 00 00 00 05 00 00 00 00"),
       CloseCode::protocol_error, 3},
      {"declared length over the limit (64-bit)", hex("82 ff 00 00 00 00 00 10 00 01"),
       CloseCode::message_too_big, 10},
      {"declared length 2^63-1", hex("82 ff 7f ff ff ff ff ff ff ff"), CloseCode::message_too_big,
       10},
      {"fragments summing over the limit",
       client_frame(Opcode::binary, repeat('a', 65535), false) +
           hex("80 ff 00 00 00 00 00 0f 00 02"),
       CloseCode::message_too_big, 65535 + 8 + 10},
      {"invalid UTF-8 in a single frame",
       client_frame(Opcode::text,
                    "ab\xFF"
                    "cd"),
       CloseCode::invalid_payload, 6 + 3},
      {"surrogate in the middle of a fragmented text (Autobahn 6.4)",
       client_frame(Opcode::text, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80",
                    false) +
           client_frame(Opcode::continuation, "edited", true),
       CloseCode::invalid_payload, 6 + 13},
      {"text ending inside a character", client_frame(Opcode::text, "ab\xE2\x82"),
       CloseCode::invalid_payload, 6 + 4},
      {"fragmented text ending inside a character",
       client_frame(Opcode::text, "ab", false) +
           client_frame(Opcode::continuation, "\xF0\x9F", true),
       CloseCode::invalid_payload, 8 + 8},
      {"close with a 1-byte payload", client_frame(Opcode::close, "\x03"),
       CloseCode::protocol_error, 7},
      {"close reason not UTF-8", client_frame(Opcode::close, close_payload(1000, "\xC0\xAF")),
       CloseCode::invalid_payload, 10},
      {"a violation after a delivered ping",
       client_frame(Opcode::ping, "x") + client_frame(0xC9, "y"), CloseCode::protocol_error, 8, 1},
  };
  for (const unsigned op : {3u, 4u, 5u, 6u, 7u, 0xBu, 0xCu, 0xDu, 0xEu, 0xFu}) {
    rows.push_back({"reserved opcode " + std::to_string(op),
                    client_frame(static_cast<std::uint8_t>(0x80 | op), "x"),
                    CloseCode::protocol_error, 1});
  }
  for (const std::uint16_t code :
       {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    rows.push_back({"close code " + std::to_string(code),
                    client_frame(Opcode::close, close_payload(code, "r")),
                    CloseCode::protocol_error, 9});
  }

  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto outcome = decode_every_way(row.stream);
    REQUIRE(outcome.error.has_value());
    CHECK(*outcome.error == row.code);
    CHECK(outcome.messages.size() == row.delivered);

    Decoder decoder;
    const auto bytewise = decode(decoder, row.stream, 1);
    CHECK(bytewise.consumed == row.decided_by);
    CHECK_THROWS_AS(decoder.feed("x", const_cast<std::vector<Message>&>(bytewise.messages)),
                    std::logic_error);
  }
}

TEST_CASE("ws decode: the declared length is refused before any payload arrives") {
  DecoderLimits limits;
  limits.max_message_bytes = 1000;
  Decoder decoder(limits);
  std::vector<Message> out;
  // 1001 bytes declared (16-bit form): only the header is sent.
  CHECK(decoder.feed(hex("82 fe 03 e9"), out) == CloseCode::message_too_big);
  CHECK(out.empty());
}

TEST_CASE("ws decode: invalid UTF-8 fails before the message ends") {
  Decoder decoder;
  std::vector<Message> out;
  CHECK_FALSE(decoder.feed(client_frame(Opcode::text, "valid start ", false), out));
  // The bad byte comes in the middle of a frame whose rest has not arrived.
  const auto frame = client_frame(Opcode::continuation,
                                  "abc\xF5"
                                  "defghij",
                                  false);
  CHECK_FALSE(decoder.feed(frame.substr(0, 6 + 3), out));
  CHECK(decoder.feed(frame.substr(9, 1), out) == CloseCode::invalid_payload);
  CHECK(out.empty());
}

TEST_CASE("ws encode: an event's text is {type,id,data} with type and id JSON-escaped") {
  const std::string type = "typ\"e\\ \t\x01 \xC3\xA9";
  const std::string id = "4\t2";
  const std::string data = R"({"a":[1,"x"]})";
  const auto event = notify::Event::message(type, id, data, 0);
  const auto& wire = event->encoded(notify::WireFormat::websocket);
  REQUIRE(wire.size() > 2);
  CHECK(static_cast<unsigned char>(wire[0]) == 0x81);  // FIN + text
  const auto length = static_cast<unsigned char>(wire[1]);
  REQUIRE(length < 126);
  const std::string text = wire.substr(2);
  CHECK(text.size() == length);
  CHECK(text == "{\"type\":" + nlohmann::json(type).dump() +
                    ",\"id\":" + nlohmann::json(id).dump() + ",\"data\":" + data + "}");
  const auto parsed = nlohmann::json::parse(text);
  CHECK(parsed["type"] == type);
  CHECK(parsed["id"] == id);
  CHECK(parsed["data"]["a"][1] == "x");

  // No id: no "id" member; no data: null.
  const auto bare = notify::Event::message("t", "", "", 0);
  CHECK(bare->encoded(notify::WireFormat::websocket).substr(2) == R"({"type":"t","data":null})");

  // A type that is not UTF-8 cannot be written as JSON: refused when the event is made, not
  // at its first WebSocket connection.
  CHECK_THROWS_AS(notify::Event::message("bad \xC3", "", "{}", 0), std::invalid_argument);
  CHECK_THROWS_AS(notify::Event::message("t", "4\xC3", "{}", 0), std::invalid_argument);
}
