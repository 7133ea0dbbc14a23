#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>

#include "http_token.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <new>
#include <stdexcept>
#include <vector>
#include <zlib.h>

namespace notify::ws {
namespace {

using detail::iequals_ascii;
using detail::is_tchar;
using detail::is_token;

// --- Sec-WebSocket-Extensions (RFC 6455 section 9.1) ---------------------------------------

struct Param {
  std::string name;
  std::optional<std::string> value;
};

struct Offer {
  std::string name;
  std::vector<Param> params;
};

// Reads the list elements of a Sec-WebSocket-Extensions value, one at a time. A malformed
// element is skipped up to the next comma outside a quoted string.
class ExtensionReader {
 public:
  explicit ExtensionReader(std::string_view text) : text_(text) {}

  bool at_end() {
    skip_separators();
    return pos_ >= text_.size();
  }

  // The next element; nullopt when it is malformed (and then skipped).
  std::optional<Offer> next() {
    Offer offer;
    offer.name = token();
    bool ok = !offer.name.empty();
    while (ok) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] == ',')
        break;
      if (text_[pos_] != ';') {
        ok = false;
        break;
      }
      ++pos_;
      skip_space();
      Param param;
      param.name = token();
      skip_space();
      if (param.name.empty()) {
        ok = false;
      } else if (pos_ < text_.size() && text_[pos_] == '=') {
        ++pos_;
        skip_space();
        param.value = value();
        ok = param.value.has_value();
      }
      if (ok)
        offer.params.push_back(std::move(param));
    }
    if (ok)
      return offer;
    skip_element();
    return std::nullopt;
  }

 private:
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t'))
      ++pos_;
  }

  void skip_separators() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == ','))
      ++pos_;
  }

  std::string token() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && is_tchar(text_[pos_]))
      ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  // A token or a quoted-string whose content is a token (RFC 6455 section 9.1).
  std::optional<std::string> value() {
    if (pos_ >= text_.size() || text_[pos_] != '"') {
      std::string t = token();
      if (t.empty())
        return std::nullopt;
      return t;
    }
    ++pos_;
    std::string content;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      if (text_[pos_] == '\\') {
        if (++pos_ >= text_.size())
          return std::nullopt;
      }
      content += text_[pos_++];
    }
    if (pos_ >= text_.size())
      return std::nullopt;  // unterminated
    ++pos_;
    if (!is_token(content))
      return std::nullopt;
    return content;
  }

  void skip_element() {
    bool quoted = false;
    for (; pos_ < text_.size(); ++pos_) {
      const char c = text_[pos_];
      if (quoted) {
        if (c == '\\') {
          ++pos_;
        } else if (c == '"') {
          quoted = false;
        }
      } else if (c == '"') {
        quoted = true;
      } else if (c == ',') {
        return;
      }
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

// "8".."15" exactly (RFC 7692 section 7.1.2).
std::optional<int> window_bits(std::string_view text) {
  if (text.empty() || text.size() > 2 || text[0] == '0')
    return std::nullopt;
  int value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value < 8 || value > 15)
    return std::nullopt;
  return value;
}

std::optional<DeflateParams> accept_offer(const Offer& offer) {
  DeflateParams params;
  bool seen_server_no_takeover = false;
  bool seen_client_no_takeover = false;
  bool seen_server_bits = false;
  bool seen_client_bits = false;
  for (const auto& param : offer.params) {
    if (iequals_ascii(param.name, "server_no_context_takeover")) {
      if (seen_server_no_takeover || param.value)
        return std::nullopt;
      seen_server_no_takeover = true;
    } else if (iequals_ascii(param.name, "client_no_context_takeover")) {
      if (seen_client_no_takeover || param.value)
        return std::nullopt;
      seen_client_no_takeover = true;
      params.client_no_context_takeover = true;
    } else if (iequals_ascii(param.name, "server_max_window_bits")) {
      if (seen_server_bits || !param.value)
        return std::nullopt;
      seen_server_bits = true;
      const auto bits = window_bits(*param.value);
      if (!bits || *bits != MAX_WBITS)
        return std::nullopt;
      params.server_max_window_bits = MAX_WBITS;
    } else if (iequals_ascii(param.name, "client_max_window_bits")) {
      // The inflater's 32 KiB window reads any smaller one: nothing to answer.
      if (seen_client_bits || (param.value && !window_bits(*param.value)))
        return std::nullopt;
      seen_client_bits = true;
    } else {
      return std::nullopt;
    }
  }
  return params;
}

// Raw DEFLATE with the largest window (RFC 7692 section 7: no zlib header, no checksum).
constexpr int raw_window_bits = -MAX_WBITS;
constexpr int mem_level = 8;
constexpr std::size_t inflate_chunk = 16 * 1024;
// z_stream::data_type flag: inflate() stopped between two blocks.
constexpr int block_boundary = 128;
constexpr std::string_view sync_tail("\x00\x00\xff\xff", 4);

Bytef* bytes(char* p) noexcept {
  return reinterpret_cast<Bytef*>(p);
}
Bytef* bytes(const char* p) noexcept {
  return reinterpret_cast<Bytef*>(const_cast<char*>(p));
}

}  // namespace

std::optional<DeflateParams> negotiate_deflate(std::string_view extensions) {
  ExtensionReader reader(extensions);
  while (!reader.at_end()) {
    const auto offer = reader.next();
    if (!offer || !iequals_ascii(offer->name, "permessage-deflate"))
      continue;
    if (auto params = accept_offer(*offer))
      return params;
  }
  return std::nullopt;
}

std::string deflate_response(const DeflateParams& params) {
  std::string out = "permessage-deflate; server_no_context_takeover";
  if (params.client_no_context_takeover)
    out += "; client_no_context_takeover";
  if (params.server_max_window_bits != 0) {
    out += "; server_max_window_bits=";
    out += std::to_string(params.server_max_window_bits);
  }
  return out;
}

// --- Deflater ------------------------------------------------------------------------------

struct Deflater::Stream {
  z_stream z{};

  explicit Stream(int level) {
    const int rc =
        deflateInit2(&z, level, Z_DEFLATED, raw_window_bits, mem_level, Z_DEFAULT_STRATEGY);
    if (rc == Z_MEM_ERROR)
      throw std::bad_alloc();
    if (rc != Z_OK)
      throw std::invalid_argument("ws: invalid deflate level");
  }
  ~Stream() { deflateEnd(&z); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

Deflater::Deflater(int level) : stream_(std::make_unique<Stream>(level)) {}
Deflater::~Deflater() = default;
Deflater::Deflater(Deflater&&) noexcept = default;
Deflater& Deflater::operator=(Deflater&&) noexcept = default;

std::string Deflater::compress_message(std::string_view payload) {
  z_stream& z = stream_->z;
  std::string out;
  // deflateBound covers the data; the sync flush adds an empty stored block (5 bytes).
  out.resize(
      deflateBound(&z, static_cast<uLong>(std::min<std::size_t>(payload.size(), ULONG_MAX))) + 16);
  std::size_t produced = 0;
  int flush = Z_NO_FLUSH;
  do {
    const std::size_t in_slice = std::min<std::size_t>(payload.size(), UINT_MAX);
    z.next_in = bytes(payload.data());
    z.avail_in = static_cast<uInt>(in_slice);
    flush = in_slice == payload.size() ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    do {
      if (out.size() - produced < 64)
        out.resize(out.size() * 2 + 64);
      const std::size_t room = std::min<std::size_t>(out.size() - produced, UINT_MAX);
      z.next_out = bytes(out.data() + produced);
      z.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&z, flush);
      produced += room - z.avail_out;
      if (rc == Z_STREAM_ERROR) {
        deflateReset(&z);
        throw std::logic_error("ws: zlib deflate stream error");
      }
    } while (z.avail_out == 0);
    payload.remove_prefix(in_slice - z.avail_in);
  } while (flush != Z_SYNC_FLUSH);
  deflateReset(&z);
  out.resize(produced);
  if (out.size() >= sync_tail.size() &&
      std::string_view(out).substr(out.size() - sync_tail.size()) == sync_tail)
    out.resize(out.size() - sync_tail.size());
  return out;
}

std::string compressed_text_frame(std::string_view payload, Deflater& deflater) {
  const std::string compressed = deflater.compress_message(payload);
  std::string out;
  append_frame(out, Opcode::text, compressed, true, true);
  return out;
}

std::string compressed_text_frame(std::string_view payload) {
  thread_local Deflater deflater;
  return compressed_text_frame(payload, deflater);
}

// --- Inflater ------------------------------------------------------------------------------

struct Inflater::Stream {
  z_stream z{};
  bool reset_each_message;
  bool ended = false;  // the message's data ended with a BFINAL block: the rest is ignored

  explicit Stream(bool no_context_takeover) : reset_each_message(no_context_takeover) {
    const int rc = inflateInit2(&z, raw_window_bits);
    if (rc != Z_OK)
      throw std::bad_alloc();
  }
  ~Stream() { inflateEnd(&z); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  Status run(std::string_view input, std::string& out, std::size_t max_size) {
    // Once the sender ended its DEFLATE stream, the rest of the message is ignored.
    while (!ended && !input.empty()) {
      const std::size_t slice = std::min<std::size_t>(input.size(), UINT_MAX);
      z.next_in = bytes(input.data());
      z.avail_in = static_cast<uInt>(slice);
      const Status status = drain(out, max_size);
      if (status != Status::ok)
        return status;
      if (!ended && z.avail_in == slice)
        return Status::corrupt;  // no progress: not expected
      input.remove_prefix(slice - z.avail_in);
    }
    return Status::ok;
  }

  // Inflates the pending input into `out`, through a chunk on the stack: `out` grows by
  // what was produced, never by a guess, and never past `max_size`.
  Status drain(std::string& out, std::size_t max_size) {
    std::array<Bytef, inflate_chunk> chunk;
    for (;;) {
      z.next_out = chunk.data();
      z.avail_out = static_cast<uInt>(chunk.size());
      const int rc = ::inflate(&z, Z_SYNC_FLUSH);
      const std::size_t produced = chunk.size() - z.avail_out;
      const std::size_t room = out.size() < max_size ? max_size - out.size() : 0;
      out.append(reinterpret_cast<const char*>(chunk.data()), std::min(produced, room));
      if (produced > room)
        return Status::too_big;
      switch (rc) {
        case Z_OK:
          if (z.avail_out != 0)
            return Status::ok;  // all the input is used and all its output out
          break;
        case Z_BUF_ERROR:  // no progress possible: the input is used up
          return Status::ok;
        case Z_STREAM_END:
          ended = true;
          return Status::ok;
        case Z_MEM_ERROR:
          return Status::error;
        default:
          return Status::corrupt;  // Z_DATA_ERROR, Z_NEED_DICT
      }
    }
  }

  Status finish(std::string& out, std::size_t max_size) {
    if (!ended) {
      const Status status = run(sync_tail, out, max_size);
      if (status != Status::ok)
        return status;
      // The tail's empty stored block must close the data at a block boundary; anything
      // else is a message cut short (an empty payload among them).
      if (!ended && (z.data_type & block_boundary) == 0)
        return Status::corrupt;
    }
    if (reset_each_message) {
      inflateReset(&z);
    } else if (ended) {
      // The sender ended its DEFLATE stream; its next message may still refer to this
      // one's data, so the window carries over into a fresh stream.
      std::vector<Bytef> window(std::size_t{1} << MAX_WBITS);
      uInt size = static_cast<uInt>(window.size());
      inflateGetDictionary(&z, window.data(), &size);
      inflateReset(&z);
      if (inflateSetDictionary(&z, window.data(), size) != Z_OK)
        return Status::error;
    }
    ended = false;
    return Status::ok;
  }
};

Inflater::Inflater(const DeflateParams& params)
    : stream_(std::make_unique<Stream>(params.client_no_context_takeover)) {}
Inflater::~Inflater() = default;
Inflater::Inflater(Inflater&&) noexcept = default;
Inflater& Inflater::operator=(Inflater&&) noexcept = default;

Inflater::Status Inflater::inflate(std::string_view compressed, std::string& out,
                                   std::size_t max_size) {
  return stream_->run(compressed, out, max_size);
}

Inflater::Status Inflater::finish_message(std::string& out, std::size_t max_size) {
  return stream_->finish(out, max_size);
}

void Inflater::reset() noexcept {
  inflateReset(&stream_->z);
  stream_->ended = false;
}

}  // namespace notify::ws
