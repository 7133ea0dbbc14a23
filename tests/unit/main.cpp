// doctest's main() for notify-unit-tests. The tests are the other *.cpp files here.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
