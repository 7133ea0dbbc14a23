// A notify-demo killed with SIGKILL while it publishes, then started again on the same store.
#pragma once

#include <string>
#include <vector>

namespace itest {

// Starts `notify-demo args...` (whose store outlives the process: SQLite, Redis), publishes
// to 40 users over one keep-alive connection while user k0 holds a stream, kills the process
// after 1,600 acknowledged publishes and starts it again. Checks that every publish answered
// 202 is in its user's list, that the sequence goes on above them, and that k0 resuming from
// the last id its stream saw gets exactly the acknowledged ones after it, in order.
void check_kill_loses_nothing(const std::vector<std::string>& args);

}  // namespace itest
