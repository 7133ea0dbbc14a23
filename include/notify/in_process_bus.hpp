// InProcessBus: the default Bus for a single instance. publish() hands the envelope to the
// listener synchronously, on the publishing thread; the event object is shared as is.
//
// Thread safety: every member function is safe to call concurrently.
#pragma once

#include <notify/bus.hpp>

#include <atomic>

namespace notify {

class NOTIFY_EXPORT InProcessBus final : public Bus {
 public:
  void start(BusListener& listener) override;
  void stop() noexcept override;
  void publish(const Envelope& envelope, std::error_code& ec) override;
  using Bus::publish;
  void subscribe(std::string_view) override {}
  void unsubscribe(std::string_view) override {}
  BusState state() const noexcept override;
  std::string_view name() const noexcept override { return "inprocess"; }

 private:
  std::atomic<BusListener*> listener_{nullptr};
};

}  // namespace notify
