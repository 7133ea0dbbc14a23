#include <notify/error.hpp>

#include <string>

namespace notify {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "notify"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::hub_stopped:
        return "the notification hub is stopped";
      case errc::too_many_connections:
        return "too many connections";
      case errc::too_many_user_connections:
        return "too many connections for this user";
      case errc::slow_consumer:
        return "the client could not keep up";
      case errc::connection_closed:
        return "the connection is closed";
      case errc::already_attached:
        return "the sink is already attached";
      case errc::bus_unavailable:
        return "the bus is unavailable";
      case errc::invalid_cursor:
        return "invalid resume cursor";
      case errc::too_many_pending_publishes:
        return "too many publishes are waiting for the store";
      case errc::store_unavailable:
        return "the store is unavailable";
      case errc::session_ended:
        return "the session ended";
    }
    return "unknown notify error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace notify
