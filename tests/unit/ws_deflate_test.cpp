#include "ws_test_support.hpp"

#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>

#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

using namespace notify::ws;
using test::ws::client_frame;
using test::ws::decode;
using test::ws::first_byte;
using test::ws::hex;

namespace {

std::string compressed_frame(std::string_view compressed, Opcode op = Opcode::text) {
  return client_frame(first_byte(op, true, true), compressed);
}

// Decodes `stream` with a fresh Inflater whole and in pieces of 1, 2 and 5 bytes; all must
// agree. Returns the whole outcome.
test::ws::Outcome inflate_every_way(std::string_view stream, DeflateParams params = {},
                                    DecoderLimits limits = {}) {
  Inflater whole_inflater(params);
  Decoder whole_decoder(limits, &whole_inflater);
  const auto whole = decode(whole_decoder, stream, 0);
  for (const std::size_t piece : {1, 2, 5}) {
    CAPTURE(piece);
    Inflater inflater(params);
    Decoder decoder(limits, &inflater);
    const auto split = decode(decoder, stream, piece);
    CHECK(test::ws::same_messages(split.messages, whole.messages));
    CHECK(split.error == whole.error);
  }
  return whole;
}

std::string json_like(std::size_t size) {
  std::string out = "[";
  for (int i = 0; out.size() < size; ++i) {
    out += R"({"id":")" + std::to_string(i) + R"(","title":"Build \u00e9 finished","read":false},)";
  }
  out.resize(size);
  return out;
}

}  // namespace

TEST_CASE("ws deflate: compressing, RFC 7692 section 7.2.3.1") {
  Deflater deflater;
  CHECK(deflater.compress_message("Hello") == hex("f2 48 cd c9 c9 07 00"));
  // No context carries over: the same message compresses to the same bytes again.
  CHECK(deflater.compress_message("Hello") == hex("f2 48 cd c9 c9 07 00"));
  CHECK(deflater.compress_message("") == hex("00"));  // 7.2.3.6
  CHECK(compressed_text_frame("Hello", deflater) == hex("c1 07 f2 48 cd c9 c9 07 00"));
  CHECK(compressed_text_frame("Hello") == hex("c1 07 f2 48 cd c9 c9 07 00"));
  const auto big = json_like(100000);
  CHECK(deflater.compress_message(big).size() < big.size() / 5);
  Deflater fastest(1);
  CHECK(fastest.compress_message(big).size() < big.size() / 2);
  CHECK_THROWS_AS(Deflater(42), std::invalid_argument);
}

TEST_CASE("ws deflate: decoding the RFC 7692 section 7.2.3 examples") {
  struct Row {
    const char* name;
    std::string stream;
    std::vector<std::string> texts;
  };
  const Row rows[] = {
      {"7.2.3.1 one frame", compressed_frame(hex("f2 48 cd c9 c9 07 00")), {"Hello"}},
      {"7.2.3.1 fragmented",
       client_frame(first_byte(Opcode::text, false, true), hex("f2 48 cd")) +
           client_frame(Opcode::continuation, hex("c9 c9 07 00")),
       {"Hello"}},
      {"7.2.3.2 context takeover",
       compressed_frame(hex("f2 48 cd c9 c9 07 00")) + compressed_frame(hex("f2 00 11 00 00")),
       {"Hello", "Hello"}},
      {"7.2.3.3 stored block",
       compressed_frame(hex("00 05 00 fa ff 48 65 6c 6c 6f 00")),
       {"Hello"}},
      {"7.2.3.4 BFINAL block", compressed_frame(hex("f3 48 cd c9 c9 07 00")), {"Hello"}},
      {"7.2.3.4 BFINAL block and trailing bytes",
       compressed_frame(hex("f3 48 cd c9 c9 07 00 00")),
       {"Hello"}},
      {"BFINAL, then a message that refers to it",
       compressed_frame(hex("f3 48 cd c9 c9 07 00")) + compressed_frame(hex("f2 00 11 00 00")),
       {"Hello", "Hello"}},
      {"7.2.3.5 two DEFLATE blocks",
       compressed_frame(hex("f2 48 05 00 00 00 ff ff ca c9 c9 07 00")),
       {"Hello"}},
      {"7.2.3.6 empty message", compressed_frame(hex("00")), {""}},
      {"compressed and plain messages mixed",
       compressed_frame(hex("f2 48 cd c9 c9 07 00")) + client_frame(Opcode::text, "plain") +
           compressed_frame(hex("f2 00 11 00 00")),
       {"Hello", "plain", "Hello"}},
      {"ping between compressed fragments",
       client_frame(first_byte(Opcode::text, false, true), hex("f2 48")) +
           client_frame(Opcode::ping, "p") +
           client_frame(Opcode::continuation, hex("cd c9 c9 07 00")),
       {"p", "Hello"}},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto outcome = inflate_every_way(row.stream);
    CHECK_FALSE(outcome.error);
    std::vector<std::string> texts;
    for (const auto& m : outcome.messages)
      texts.push_back(m.payload);
    CHECK(texts == row.texts);
  }
}

TEST_CASE("ws deflate: round trip through Deflater and Decoder") {
  std::mt19937 random(7);
  std::string noise(100000, '\0');
  for (auto& c : noise)
    c = static_cast<char>(random());
  struct Row {
    const char* name;
    Opcode op;
    std::string payload;
  };
  const Row rows[] = {
      {"empty", Opcode::text, ""},
      {"short", Opcode::text, "Hello"},
      {"JSON, 300 KB", Opcode::text, json_like(300000)},
      {"UTF-8", Opcode::text, "h\xC3\xA9llo \xF0\x9F\x94\x94 \xE2\x82\xAC"},
      {"random binary, 100 KB", Opcode::binary, noise},
  };
  Deflater deflater;
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto compressed = deflater.compress_message(row.payload);
    // Whole, then as three fragments.
    std::string stream = compressed_frame(compressed, row.op);
    const std::size_t third = compressed.size() / 3;
    stream += client_frame(first_byte(row.op, false, true), compressed.substr(0, third));
    stream += client_frame(Opcode::continuation, compressed.substr(third, third), false);
    stream += client_frame(Opcode::continuation, compressed.substr(2 * third), true);
    for (const bool takeover : {false, true}) {
      DeflateParams params;
      params.client_no_context_takeover = !takeover;
      Inflater inflater(params);
      Decoder decoder({}, &inflater);
      const auto outcome = decode(decoder, stream, row.payload.size() < 1000 ? 1 : 4096);
      CHECK_FALSE(outcome.error);
      REQUIRE(outcome.messages.size() == 2);
      CHECK(outcome.messages[0].opcode == row.op);
      CHECK(outcome.messages[0].payload == row.payload);
      CHECK(outcome.messages[1].payload == row.payload);
    }
  }
}

TEST_CASE("ws deflate: a zip bomb stops at the limit with 1009") {
  Deflater deflater(9);
  const std::string zeros(2 << 20, '\0');  // 2 MiB
  const auto bomb = deflater.compress_message(zeros);
  CHECK(bomb.size() < 4096);

  const auto stream = compressed_frame(bomb, Opcode::binary);
  const auto outcome = inflate_every_way(stream);
  REQUIRE(outcome.error.has_value());
  CHECK(*outcome.error == CloseCode::message_too_big);
  CHECK(outcome.messages.empty());

  // Inflating stops once past the limit, about half way through the compressed bytes.
  Inflater inflater;
  Decoder decoder({}, &inflater);
  const auto bytewise = decode(decoder, stream, 1);
  CHECK(bytewise.error == CloseCode::message_too_big);
  CHECK(bytewise.consumed < stream.size() * 3 / 4);

  // The Inflater alone never grows its output past the limit.
  Inflater alone;
  std::string out;
  CHECK(alone.inflate(bomb, out, 1 << 20) == Inflater::Status::too_big);
  CHECK(out.size() == (1 << 20));
}

TEST_CASE("ws deflate: the limit applies to the inflated size, inclusively") {
  DecoderLimits limits;
  limits.max_message_bytes = 1000;
  Deflater deflater;
  auto outcome = inflate_every_way(
      compressed_frame(deflater.compress_message(std::string(1000, 'a'))), {}, limits);
  CHECK_FALSE(outcome.error);
  REQUIRE(outcome.messages.size() == 1);
  CHECK(outcome.messages[0].payload.size() == 1000);

  outcome = inflate_every_way(compressed_frame(deflater.compress_message(std::string(1001, 'a'))),
                              {}, limits);
  CHECK(outcome.error == CloseCode::message_too_big);
}

TEST_CASE("ws deflate: violations") {
  Deflater deflater;
  struct Row {
    const char* name;
    std::string stream;
    CloseCode code;
    DeflateParams params = {};
  };
  const Row rows[] = {
      {"not DEFLATE", compressed_frame(hex("ff ff ff ff")), CloseCode::invalid_payload},
      {"reserved block type", compressed_frame(hex("07 00")), CloseCode::invalid_payload},
      {"cut short", compressed_frame(hex("f2 48 cd")), CloseCode::invalid_payload},
      {"empty compressed payload", compressed_frame(""), CloseCode::invalid_payload},
      {"invalid UTF-8 once inflated",
       compressed_frame(deflater.compress_message("ab\xFF"
                                                  "cd")),
       CloseCode::invalid_payload},
      {"text inflating to half a character",
       compressed_frame(deflater.compress_message("ab\xE2\x82")), CloseCode::invalid_payload},
      {"RSV1 on a continuation",
       client_frame(first_byte(Opcode::text, false, true), hex("f2 48")) +
           client_frame(first_byte(Opcode::continuation, true, true), hex("cd c9 c9 07 00")),
       CloseCode::protocol_error},
      {"RSV1 on a ping", client_frame(first_byte(Opcode::ping, true, true), ""),
       CloseCode::protocol_error},
      {"RSV1 on a close", client_frame(first_byte(Opcode::close, true, true), ""),
       CloseCode::protocol_error},
      {"context used after client_no_context_takeover",
       compressed_frame(hex("f2 48 cd c9 c9 07 00")) + compressed_frame(hex("f2 00 11 00 00")),
       CloseCode::invalid_payload, DeflateParams{true, 0}},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const auto outcome = inflate_every_way(row.stream, row.params);
    REQUIRE(outcome.error.has_value());
    CHECK(*outcome.error == row.code);
  }
}

TEST_CASE("ws deflate: the first violation in a message wins, however its bytes are split") {
  // Found by the fuzzer: fed whole, one inflate call went past the limit and answered 1009;
  // fed in pieces, the invalid byte well before the limit was seen first (1007).
  DecoderLimits limits;
  limits.max_message_bytes = 200;
  Deflater deflater;
  std::string text = "abc\xFF";
  text += std::string(10000, 'a');
  auto outcome = inflate_every_way(compressed_frame(deflater.compress_message(text)), {}, limits);
  CHECK(outcome.error == CloseCode::invalid_payload);

  // Invalid only past the limit: the limit is what fails.
  text = std::string(300, 'a') + "\xFF";
  outcome = inflate_every_way(compressed_frame(deflater.compress_message(text)), {}, limits);
  CHECK(outcome.error == CloseCode::message_too_big);

  // A lead byte at the limit whose bad continuation lies past it: the limit as well.
  text = std::string(199, 'a') + "\xE0\x80" + std::string(100, 'a');
  outcome = inflate_every_way(compressed_frame(deflater.compress_message(text)), {}, limits);
  CHECK(outcome.error == CloseCode::message_too_big);

  // The fuzzer's input itself.
  const auto stream =
      hex("41 94 37 fa 01 db 9d ac b6 ea 71 39 fa 21 b9 7f ff 75 2d ff 02 ae e2 08 e8 61 75 2d 38 "
          "37 fa");
  DeflateParams params;
  params.client_no_context_takeover = true;
  outcome = inflate_every_way(stream, params, limits);
  CHECK(outcome.error == CloseCode::invalid_payload);
}

TEST_CASE("ws deflate: invalid UTF-8 fails while the compressed message is still arriving") {
  Deflater deflater;
  std::string text = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80";  // Autobahn 6.4
  text += std::string(10000, 'x');
  const auto compressed = deflater.compress_message(text);
  Inflater inflater;
  Decoder decoder({}, &inflater);
  std::vector<Message> out;
  CHECK(decoder.feed(client_frame(first_byte(Opcode::text, false, true), compressed), out) ==
        CloseCode::invalid_payload);
  CHECK(out.empty());
}

TEST_CASE("ws deflate: negotiation") {
  struct Row {
    const char* offer;
    const char* answer;  // "" when declined
  };
  constexpr const char* plain = "permessage-deflate; server_no_context_takeover";
  constexpr const char* client_reset =
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  constexpr const char* bits15 =
      "permessage-deflate; server_no_context_takeover; server_max_window_bits=15";
  const Row rows[] = {
      {"permessage-deflate", plain},
      {"permessage-deflate; client_max_window_bits", plain},  // what browsers send
      {"permessage-deflate; client_max_window_bits=10", plain},
      {"permessage-deflate; server_no_context_takeover", plain},
      {"permessage-deflate; client_no_context_takeover", client_reset},
      {"permessage-deflate; server_no_context_takeover; client_no_context_takeover", client_reset},
      {"permessage-deflate; server_max_window_bits=15", bits15},
      {"permessage-deflate; server_max_window_bits=\"15\"", bits15},
      {"PerMessage-Deflate; Client_No_Context_Takeover", client_reset},
      {"permessage-deflate ;client_no_context_takeover ", client_reset},
      {"permessage-deflate\t;\tclient_max_window_bits = 9", plain},
      {", , permessage-deflate", plain},
      {"x-webkit-deflate-frame, permessage-deflate", plain},
      {"foo; bar=\"a,b\", permessage-deflate", plain},
      {"permessage-deflate; server_max_window_bits=10, permessage-deflate", plain},
      {"permessage-deflate; client_max_window_bits=\"1,5\", "
       "permessage-deflate; client_no_context_takeover",
       client_reset},
      {"permessage-deflate; nope, permessage-deflate; client_no_context_takeover", client_reset},
      {"", ""},
      {"x-webkit-deflate-frame", ""},
      {"permessage-deflate; server_max_window_bits=10", ""},
      {"permessage-deflate; server_max_window_bits=8", ""},
      {"permessage-deflate; server_max_window_bits", ""},
      {"permessage-deflate; client_max_window_bits=16", ""},
      {"permessage-deflate; client_max_window_bits=7", ""},
      {"permessage-deflate; client_max_window_bits=08", ""},
      {"permessage-deflate; client_max_window_bits=+9", ""},
      {"permessage-deflate; client_max_window_bits=\"15", ""},
      {"permessage-deflate; server_no_context_takeover=1", ""},
      {"permessage-deflate; client_no_context_takeover=\"x\"", ""},
      {"permessage-deflate; client_no_context_takeover; client_no_context_takeover", ""},
      {"permessage-deflate; server_max_window_bits=15; server_max_window_bits=15", ""},
      {"permessage-deflate; client_max_window_bits; client_max_window_bits=9", ""},
      {"permessage-deflate; unknown_param", ""},
      {"permessage-deflate;", ""},
      {"permessage-deflate; =15", ""},
      {"permessage-deflate client_no_context_takeover", ""},
      {"permessage-deflate; server_max_window_bits=", ""},
      {"\"permessage-deflate\"", ""},
  };
  for (const auto& row : rows) {
    CAPTURE(row.offer);
    const auto params = negotiate_deflate(row.offer);
    CHECK(params.has_value() == (*row.answer != '\0'));
    if (params)
      CHECK(deflate_response(*params) == row.answer);
  }
}
