// doctest's main() for notify-integration-tests. The tests are the other *.cpp
// files here; NOTIFY_DEMO_PATH is the path of the notify-demo executable.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
