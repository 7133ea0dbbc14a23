#include <notify/bus.hpp>

namespace notify {

Bus::~Bus() = default;

void Bus::publish(const Envelope& envelope) {
  std::error_code ec;
  publish(envelope, ec);
  if (ec)
    throw std::system_error(ec, "bus publish");
}

}  // namespace notify
