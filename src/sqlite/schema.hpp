// The database schema of SqliteStore and its migrations. The schema version is the
// database's PRAGMA user_version: 0 is an empty file, each migration takes version N to N+1.
//
// Thread safety: none; called once, by the constructor, before the store is shared.
#pragma once

#include "database.hpp"

namespace notify::sqlite {

inline constexpr int schema_version = 4;

// Applies every migration the database lacks, in one transaction. Throws std::runtime_error
// when the database has a newer schema than this code knows.
void migrate(Database& db);

}  // namespace notify::sqlite
