#include <notify/notification.hpp>

#include "notification_fields.hpp"

#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace notify {
namespace {

using nlohmann::json;

// nlohmann::json SAX events for one request body, read straight into a Notification: a JSON
// tree is built only for `data` (and for other members, when the caller keeps them). What
// from_json() would refuse is noted as it comes and thrown after the parse, in from_json()'s
// order, so both report the same first problem; a member that appears twice counts once, the
// last time, as in a JSON tree.
class DraftReader {
 public:
  explicit DraftReader(json* others) : others_(others) {}

  // --- the SAX interface --------------------------------------------------------------
  bool null() { return scalar(json(nullptr)); }
  bool boolean(bool v) { return scalar(json(v)); }
  bool number_integer(json::number_integer_t v) { return scalar(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return scalar(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return scalar(json(v)); }
  bool binary(json::binary_t& v) { return scalar(json::binary(std::move(v))); }

  bool string(json::string_t& v) {
    if (depth_ == 1 && target_ == Target::string_field) {
      draft_.*(detail::string_fields[field_].member) = std::move(v);
      return true;
    }
    return scalar(json(std::move(v)));
  }

  bool start_object(std::size_t) { return start(json::value_t::object); }
  bool start_array(std::size_t) { return start(json::value_t::array); }
  bool end_object() { return end(); }
  bool end_array() { return end(); }

  bool key(json::string_t& k) {
    if (depth_ == 1) {
      choose_target(k);
      return true;
    }
    if (building())
      key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    // Thrown as the DOM parser throws it, so a caller catches the same types.
    if (const auto* p = dynamic_cast<const json::parse_error*>(&e))
      throw *p;
    if (const auto* o = dynamic_cast<const json::out_of_range*>(&e))
      throw *o;
    throw std::runtime_error(e.what());
  }

  // --- after the parse ----------------------------------------------------------------
  Notification finish() {
    if (!top_is_object_)
      throw ValidationError("notification", "must be a JSON object");
    for (std::size_t f = 0; f < detail::string_field_count; ++f) {
      if (string_wrong_[f])
        throw ValidationError(std::string(detail::string_fields[f].json_name), "must be a string");
    }
    if (broadcast_wrong_)
      throw ValidationError("broadcast", "must be true or false");
    if (data_wrong_)
      throw ValidationError("data", "must be a JSON object");
    if (data_too_deep_)
      throw ValidationError("data", detail::too_deep(default_max_data_depth));
    if (!other_too_deep_.empty())
      throw ValidationError(other_too_deep_, detail::too_deep(default_max_data_depth));
    return std::move(draft_);
  }

 private:
  enum class Target { string_field, broadcast, data, other, ignored };

  void choose_target(const std::string& k) {
    // A member seen again replaces what the earlier one said.
    for (std::size_t f = 0; f < detail::string_field_count; ++f) {
      if (k == detail::string_fields[f].json_name) {
        target_ = Target::string_field;
        field_ = f;
        string_wrong_[f] = false;
        draft_.*(detail::string_fields[f].member) = std::string();
        return;
      }
    }
    if (k == "broadcast") {
      target_ = Target::broadcast;
      broadcast_wrong_ = false;
      draft_.broadcast = false;
    } else if (k == "data") {
      target_ = Target::data;
      data_wrong_ = data_too_deep_ = false;
      draft_.data = json();
    } else if (others_) {
      target_ = Target::other;
      other_key_ = k;
      if (other_too_deep_ == k)
        other_too_deep_.clear();
    } else {
      target_ = Target::ignored;
    }
  }

  // A scalar: a member's whole value at depth 1, or a part of a value being built.
  bool scalar(json value) {
    if (depth_ == 0)  // the body is a scalar
      return true;
    if (depth_ == 1) {
      switch (target_) {
        case Target::string_field:
          string_wrong_[field_] = !value.is_null();  // null leaves the field unset
          break;
        case Target::broadcast:
          if (value.is_boolean())
            draft_.broadcast = value.get<bool>();
          else
            broadcast_wrong_ = !value.is_null();
          break;
        case Target::data:
          data_wrong_ = !value.is_null();
          break;
        case Target::other:
          (*others_)[other_key_] = std::move(value);
          break;
        case Target::ignored:
          break;
      }
      return true;
    }
    if (building())
      place(std::move(value));
    return true;
  }

  // The container itself is made only where it is kept: the body's own object is not.
  bool start(json::value_t kind) {
    ++depth_;
    if (depth_ == 1) {
      top_is_object_ = kind == json::value_t::object;
      return true;
    }
    if (depth_ == 2) {  // a member's value that is an array or an object
      switch (target_) {
        case Target::string_field:
          string_wrong_[field_] = true;
          return true;
        case Target::broadcast:
          broadcast_wrong_ = true;
          return true;
        case Target::data:
          if (kind != json::value_t::object) {
            data_wrong_ = true;
            return true;
          }
          draft_.data = json(kind);
          stack_[0] = &draft_.data;
          stack_size_ = 1;
          return true;
        case Target::other:
          (*others_)[other_key_] = json(kind);
          stack_[0] = &(*others_)[other_key_];
          stack_size_ = 1;
          return true;
        case Target::ignored:
          return true;
      }
    }
    if (!building())
      return true;
    if (stack_size_ == stack_.size()) {  // refuse it, keep reading the rest
      if (target_ == Target::data)
        data_too_deep_ = true;
      else
        other_too_deep_ = other_key_;
      stack_size_ = 0;
      return true;
    }
    json* placed = place(json(kind));
    stack_[stack_size_++] = placed;
    return true;
  }

  bool end() {
    if (depth_ >= 2 && building() && stack_size_ + 1 == depth_)
      --stack_size_;
    --depth_;
    return true;
  }

  // Whether events at this depth go into a value being built (data, or another member).
  bool building() const { return stack_size_ != 0 && depth_ >= 2; }

  json* place(json value) {
    json& parent = *stack_[stack_size_ - 1];
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(value);
    return &slot;
  }

  json* others_;
  Notification draft_;
  std::size_t depth_ = 0;  // 1 inside the body's object
  bool top_is_object_ = false;
  Target target_ = Target::ignored;
  std::size_t field_ = 0;
  std::string other_key_;
  std::string key_;  // the key of the next value placed in an object being built
  // The containers being built, innermost last (a fixed array: the depth is limited).
  std::array<json*, default_max_data_depth> stack_{};
  std::size_t stack_size_ = 0;
  std::array<bool, detail::string_field_count> string_wrong_{};
  bool broadcast_wrong_ = false, data_wrong_ = false, data_too_deep_ = false;
  std::string other_too_deep_;
};

}  // namespace

Notification parse_notification(std::string_view text, nlohmann::json* others) {
  if (others)
    *others = json::object();
  DraftReader reader(others);
  json::sax_parse(text.begin(), text.end(), &reader);
  return reader.finish();
}

}  // namespace notify
