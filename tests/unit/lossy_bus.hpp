// LossyBus: an in-process bus that can lose messages, as Redis pub/sub does while it is away,
// and then tells its listener that it recovered; or refuse publishes (bus_unavailable) from
// a given one on, as a bus that lost its connection does.
#pragma once

#include <notify/bus.hpp>
#include <notify/error.hpp>

#include <atomic>
#include <cstddef>
#include <string_view>
#include <system_error>

namespace test {

class LossyBus final : public notify::Bus {
 public:
  void start(notify::BusListener& l) override { listener_ = &l; }
  void stop() noexcept override { listener_ = nullptr; }
  void publish(const notify::Envelope& e, std::error_code& ec) override {
    ec.clear();
    if (published_++ >= refuse_from_) {
      ec = notify::errc::bus_unavailable;
      return;
    }
    if (!losing_ && listener_)
      listener_->on_bus_message(e);
  }
  void subscribe(std::string_view) override {}
  void unsubscribe(std::string_view) override {}
  notify::BusState state() const noexcept override {
    return losing_ ? notify::BusState::reconnecting : notify::BusState::connected;
  }
  std::string_view name() const noexcept override { return "lossy"; }
  void lose(bool on) { losing_ = on; }
  // Publishes after the first `n` from now on are refused.
  void refuse_after(std::size_t n) { refuse_from_ = published_ + n; }
  void recover() {
    losing_ = false;
    listener_->on_bus_recovered();
  }

 private:
  notify::BusListener* listener_ = nullptr;
  std::atomic<bool> losing_{false};
  std::atomic<std::size_t> published_{0};
  std::atomic<std::size_t> refuse_from_{static_cast<std::size_t>(-1)};
};

}  // namespace test
