#include <notify/error.hpp>
#include <notify/in_process_bus.hpp>

namespace notify {

void InProcessBus::start(BusListener& listener) {
  listener_.store(&listener, std::memory_order_release);
}

void InProcessBus::stop() noexcept {
  listener_.store(nullptr, std::memory_order_release);
}

void InProcessBus::publish(const Envelope& envelope, std::error_code& ec) {
  auto* listener = listener_.load(std::memory_order_acquire);
  if (!listener) {
    ec = make_error_code(errc::bus_unavailable);
    return;
  }
  ec.clear();
  listener->on_bus_message(envelope);
}

BusState InProcessBus::state() const noexcept {
  return listener_.load(std::memory_order_acquire) ? BusState::connected : BusState::stopped;
}

}  // namespace notify
