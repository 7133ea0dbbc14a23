// What a fuzz target does when one of its invariants fails: say which, and abort, so that
// libFuzzer keeps the input as a crash (its report names the target and the stack).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace fuzz {

[[noreturn]] inline void violated(const char* what) {
  std::fprintf(stderr, "invariant violated: %s\n", what);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok)
    violated(what);
}

}  // namespace fuzz
