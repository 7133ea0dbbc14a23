// MemoryStore's own cases. The Store contract cases it shares with the other stores are in
// store_contract_test.cpp.
#include <notify/memory_store.hpp>

#include <doctest/doctest.h>

#include <stdexcept>

TEST_CASE("memory store: history sizes must be at least 1") {
  CHECK_THROWS_AS(notify::MemoryStore(notify::MemoryStoreOptions{0, 1}), std::invalid_argument);
  CHECK_THROWS_AS(notify::MemoryStore(notify::MemoryStoreOptions{1, 0}), std::invalid_argument);
}

TEST_CASE("store: parse_sequence") {
  CHECK(notify::parse_sequence("42") == 42u);
  CHECK(notify::parse_sequence("0") == 0u);
  CHECK_FALSE(notify::parse_sequence(""));
  CHECK_FALSE(notify::parse_sequence("-1"));
  CHECK_FALSE(notify::parse_sequence("4a"));
  CHECK_FALSE(notify::parse_sequence("99999999999999999999999"));
}
