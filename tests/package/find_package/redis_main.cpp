// A consumer of the notify::redis component (built when the component is installed).
#include <notify/redis_bus.hpp>
#include <notify/redis_store.hpp>

int main() {
  const auto options = notify::parse_redis_url("redis://127.0.0.1:6390/2");
  notify::RedisBus bus;  // connects only when started
  return options.port == 6390 && options.db == 2 && bus.name() == "redis" ? 0 : 1;
}
