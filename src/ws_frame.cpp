#include <notify/ws_deflate.hpp>
#include <notify/ws_frame.hpp>

#include <algorithm>
#include <stdexcept>

namespace notify::ws {
namespace {

constexpr std::uint8_t fin_bit = 0x80;
constexpr std::uint8_t rsv1_bit = 0x40;
constexpr std::uint8_t rsv23_bits = 0x30;
constexpr std::uint8_t opcode_bits = 0x0F;
constexpr std::uint8_t mask_bit = 0x80;
constexpr std::uint8_t length_bits = 0x7F;
constexpr std::uint8_t length_16 = 126;
constexpr std::uint8_t length_64 = 127;
constexpr std::size_t close_reason_max = max_control_payload - 2;

constexpr bool is_known_opcode(unsigned op) noexcept {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

}  // namespace

bool is_valid_close_code(std::uint16_t code) noexcept {
  if (code >= 3000 && code <= 4999)
    return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

std::size_t frame_header_size(std::size_t payload_size) noexcept {
  if (payload_size <= 125)
    return 2;
  if (payload_size <= 0xFFFF)
    return 4;
  return 10;
}

void append_frame(std::string& out, Opcode op, std::string_view payload, bool fin, bool rsv1) {
  const auto code = static_cast<unsigned>(op);
  if (!is_known_opcode(code))
    throw std::invalid_argument("ws: reserved opcode");
  if (is_control(op)) {
    if (!fin)
      throw std::invalid_argument("ws: a control frame cannot be fragmented");
    if (rsv1)
      throw std::invalid_argument("ws: a control frame cannot be compressed");
    if (payload.size() > max_control_payload)
      throw std::invalid_argument("ws: a control frame's payload is at most 125 bytes");
  }
  if (rsv1 && op == Opcode::continuation)
    throw std::invalid_argument("ws: RSV1 is set on the first frame of a message only");

  const std::size_t size = payload.size();
  out.reserve(out.size() + frame_header_size(size) + size);
  out += static_cast<char>((fin ? fin_bit : 0) | (rsv1 ? rsv1_bit : 0) | code);
  if (size <= 125) {
    out += static_cast<char>(size);
  } else if (size <= 0xFFFF) {
    out += static_cast<char>(length_16);
    out += static_cast<char>(size >> 8);
    out += static_cast<char>(size & 0xFF);
  } else {
    out += static_cast<char>(length_64);
    const auto wide = static_cast<std::uint64_t>(size);
    for (int shift = 56; shift >= 0; shift -= 8)
      out += static_cast<char>((wide >> shift) & 0xFF);
  }
  out.append(payload);
}

std::string text_frame(std::string_view payload) {
  std::string out;
  append_frame(out, Opcode::text, payload);
  return out;
}

std::string binary_frame(std::string_view payload) {
  std::string out;
  append_frame(out, Opcode::binary, payload);
  return out;
}

std::string close_frame(CloseCode code, std::string_view reason) {
  std::string out;
  if (code == CloseCode::no_status) {
    if (!reason.empty())
      throw std::invalid_argument("ws: a close reason needs a close code");
    append_frame(out, Opcode::close, {});
    return out;
  }
  const auto value = static_cast<std::uint16_t>(code);
  if (!is_valid_close_code(value))
    throw std::invalid_argument("ws: this close code may not be sent");
  if (!is_valid_utf8(reason))
    throw std::invalid_argument("ws: a close reason must be UTF-8");
  if (reason.size() > close_reason_max) {
    std::size_t cut = close_reason_max;
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80)
      --cut;
    reason = reason.substr(0, cut);
  }
  std::string payload;
  payload += static_cast<char>(value >> 8);
  payload += static_cast<char>(value & 0xFF);
  payload += reason;
  append_frame(out, Opcode::close, payload);
  return out;
}

std::string ping_frame(std::string_view payload) {
  std::string out;
  append_frame(out, Opcode::ping, payload);
  return out;
}

std::string pong_frame(std::string_view payload) {
  std::string out;
  append_frame(out, Opcode::pong, payload);
  return out;
}

// --- Decoder -------------------------------------------------------------------------------

Decoder::Decoder(DecoderLimits limits, Inflater* inflater) : limits_(limits), inflater_(inflater) {}

std::optional<CloseCode> Decoder::fail(CloseCode code) {
  state_ = State::failed;
  message_.clear();
  message_.shrink_to_fit();
  control_.clear();
  return code;
}

std::optional<CloseCode> Decoder::feed(std::string_view bytes, std::vector<Message>& out) {
  if (state_ == State::failed)
    throw std::logic_error("ws: the decoder failed the connection and cannot be fed again");
  while (!bytes.empty()) {
    if (state_ == State::closed)
      return std::nullopt;
    if (state_ == State::header) {
      const auto byte = static_cast<std::uint8_t>(bytes.front());
      bytes.remove_prefix(1);
      if (auto error = header_byte(byte))
        return error;
      if (header_size_ < header_needed_)
        continue;
      start_payload();
      if (remaining_ != 0)
        continue;
    } else {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
      if (auto error = payload_bytes(bytes.substr(0, take)))
        return error;
      bytes.remove_prefix(take);
      remaining_ -= take;
      if (remaining_ != 0)
        continue;
    }
    if (auto error = end_frame(out))
      return error;
  }
  return std::nullopt;
}

std::optional<CloseCode> Decoder::header_byte(std::uint8_t byte) {
  header_[header_size_++] = byte;
  if (header_size_ == 1) {
    if ((byte & rsv23_bits) != 0)
      return fail(CloseCode::protocol_error);
    const unsigned code = byte & opcode_bits;
    if (!is_known_opcode(code))
      return fail(CloseCode::protocol_error);
    opcode_ = static_cast<Opcode>(code);
    fin_ = (byte & fin_bit) != 0;
    const bool rsv1 = (byte & rsv1_bit) != 0;
    if (is_control(opcode_)) {
      if (!fin_ || rsv1)
        return fail(CloseCode::protocol_error);
    } else if (opcode_ == Opcode::continuation) {
      if (!in_message_ || rsv1)
        return fail(CloseCode::protocol_error);
    } else {
      if (in_message_ || (rsv1 && inflater_ == nullptr))
        return fail(CloseCode::protocol_error);
    }
    return std::nullopt;
  }
  if (header_size_ == 2) {
    if ((byte & mask_bit) == 0)
      return fail(CloseCode::protocol_error);
    const std::uint8_t length = byte & length_bits;
    if (is_control(opcode_) && length > max_control_payload)
      return fail(CloseCode::protocol_error);
    header_needed_ = 2 + (length == length_16 ? 2 : length == length_64 ? 8 : 0) + 4;
  } else if (header_size_ == 3 && (header_[1] & length_bits) == length_64 && (byte & 0x80) != 0) {
    return fail(CloseCode::protocol_error);
  }
  if (header_size_ == header_needed_ - 4)
    return declared_length();
  return std::nullopt;
}

// The payload length is complete (the mask key follows): checked against the limit
// before any of the payload is read.
std::optional<CloseCode> Decoder::declared_length() {
  const std::uint8_t length = header_[1] & length_bits;
  std::uint64_t size = length;
  if (length == length_16 || length == length_64) {
    size = 0;
    for (std::size_t i = 2; i < header_size_; ++i)
      size = (size << 8) | header_[i];
  }
  remaining_ = size;
  if (is_control(opcode_))
    return std::nullopt;
  const std::size_t so_far = opcode_ == Opcode::continuation ? wire_bytes_ : 0;
  if (size > limits_.max_message_bytes - so_far)
    return fail(CloseCode::message_too_big);
  return std::nullopt;
}

void Decoder::start_payload() {
  state_ = State::payload;
  mask_offset_ = 0;
  if (is_control(opcode_)) {
    control_.clear();
    return;
  }
  if (opcode_ != Opcode::continuation) {
    in_message_ = true;
    message_opcode_ = opcode_;
    compressed_ = (header_[0] & rsv1_bit) != 0;
    wire_bytes_ = 0;
    message_.clear();
    utf8_.reset();
  }
  wire_bytes_ += static_cast<std::size_t>(remaining_);
}

void Decoder::unmask(char* data, std::size_t size) noexcept {
  const std::uint8_t* key = header_.data() + header_needed_ - 4;
  for (std::size_t i = 0; i < size; ++i) {
    data[i] = static_cast<char>(static_cast<std::uint8_t>(data[i]) ^ key[mask_offset_]);
    mask_offset_ = (mask_offset_ + 1) & 3;
  }
}

std::optional<CloseCode> Decoder::payload_bytes(std::string_view bytes) {
  if (is_control(opcode_)) {
    const std::size_t start = control_.size();
    control_.append(bytes);
    unmask(control_.data() + start, bytes.size());
    return std::nullopt;
  }
  if (compressed_) {
    // Unmasked through a small buffer: the compressed bytes are not kept.
    std::array<char, 4096> buffer;
    while (!bytes.empty()) {
      const std::size_t n = std::min(bytes.size(), buffer.size());
      std::copy_n(bytes.data(), n, buffer.data());
      unmask(buffer.data(), n);
      if (auto error = inflate(std::string_view(buffer.data(), n), false))
        return error;
      bytes.remove_prefix(n);
    }
    return std::nullopt;
  }
  const std::size_t start = message_.size();
  message_.append(bytes);
  unmask(message_.data() + start, bytes.size());
  if (message_opcode_ == Opcode::text && !utf8_.feed(std::string_view(message_).substr(start)))
    return fail(CloseCode::invalid_payload);
  return std::nullopt;
}

std::optional<CloseCode> Decoder::inflate(std::string_view compressed, bool last) {
  const std::size_t start = message_.size();
  const auto status = last ? inflater_->finish_message(message_, limits_.max_message_bytes)
                           : inflater_->inflate(compressed, message_, limits_.max_message_bytes);
  if (status == Inflater::Status::error)
    return fail(CloseCode::internal_error);
  // The output kept (up to the limit) is validated before a too_big or corrupt status
  // counts: the first violation in the message wins, however its bytes were split.
  if (message_opcode_ == Opcode::text && !utf8_.feed(std::string_view(message_).substr(start)))
    return fail(CloseCode::invalid_payload);
  if (status == Inflater::Status::too_big)
    return fail(CloseCode::message_too_big);
  if (status == Inflater::Status::corrupt)
    return fail(CloseCode::invalid_payload);
  return std::nullopt;
}

std::optional<CloseCode> Decoder::end_frame(std::vector<Message>& out) {
  header_size_ = 0;
  header_needed_ = 2;
  state_ = State::header;
  if (is_control(opcode_))
    return end_control_frame(out);
  if (!fin_)
    return std::nullopt;
  if (compressed_) {
    if (auto error = inflate({}, true))
      return error;
  }
  if (message_opcode_ == Opcode::text && !utf8_.complete())
    return fail(CloseCode::invalid_payload);
  in_message_ = false;
  wire_bytes_ = 0;
  Message message;
  message.opcode = message_opcode_;
  message.payload = std::move(message_);
  message_ = std::string();
  out.push_back(std::move(message));
  return std::nullopt;
}

std::optional<CloseCode> Decoder::end_control_frame(std::vector<Message>& out) {
  Message message;
  message.opcode = opcode_;
  if (opcode_ == Opcode::close) {
    if (control_.size() == 1)
      return fail(CloseCode::protocol_error);
    if (control_.size() >= 2) {
      const auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(control_[0]) << 8) |
                                                   static_cast<std::uint8_t>(control_[1]));
      if (!is_valid_close_code(code))
        return fail(CloseCode::protocol_error);
      const std::string_view reason = std::string_view(control_).substr(2);
      if (!is_valid_utf8(reason))
        return fail(CloseCode::invalid_payload);
      message.close_code = code;
      message.payload = std::string(reason);
    }
    state_ = State::closed;
  } else {
    message.payload = control_;
  }
  out.push_back(std::move(message));
  return std::nullopt;
}

}  // namespace notify::ws
