// The database schema of SqliteStore and its migrations. The schema version is the
// database's PRAGMA user_version: 0 is an empty file, each migration takes version N to N+1.
//
// Thread safety: none; called once, by the constructor, before the store is shared.
#pragma once

#include "database.hpp"

namespace notify::sqlite {

inline constexpr int schema_version = 5;

// notify's PRAGMA application_id ("ntfy"), set on every database it creates or migrates.
inline constexpr int application_id = 0x6e746679;

// Refuses, before anything is written to it, a database that is not notify's (another
// application's id, tables in a file of version 0, a version without notify's tables) or
// has a newer schema than this code knows: std::runtime_error.
void check_is_ours(Database& db);

// Applies every migration the database lacks, in one transaction. Throws std::runtime_error
// when the database has a newer schema than this code knows.
void migrate(Database& db);

}  // namespace notify::sqlite
