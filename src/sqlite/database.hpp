// Database, Statement, Query, Transaction: a thin RAII layer over the SQLite C API. Every
// failure throws std::system_error whose code is the SQLite result code (category "sqlite")
// and whose what() carries the SQLite message.
//
// Thread safety: none. One Database and its statements are used by one thread at a time
// (SqliteStore serializes them with its mutex).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

namespace notify::sqlite {

const std::error_category& category() noexcept;

// Throws std::system_error for `code` with "<context>: <the connection's message>".
[[noreturn]] void throw_error(sqlite3* db, int code, std::string_view context);

class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are numbered from 1.
  void bind(int index, std::int64_t value);
  void bind(int index, std::string_view text);
  void bind_null(int index);

  // Advances: true when a row is available, false when the statement is done.
  bool step();
  // Back to the start, parameters cleared. Never throws.
  void reset() noexcept;

  // Columns are numbered from 0.
  std::int64_t int64(int column) const;
  std::string text(int column) const;  // "" for NULL
  bool is_null(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// One use of a cached statement: resets it when it goes out of scope, so that a statement
// left mid-way (an early return, an exception) does not keep a read transaction open.
class Query {
 public:
  explicit Query(Statement& statement) noexcept : statement_(&statement) {}
  ~Query() { statement_->reset(); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Statement* operator->() const noexcept { return statement_; }
  Statement& operator*() const noexcept { return *statement_; }

  // Runs a statement that returns no rows (or whose rows do not matter).
  void run() {
    while (statement_->step()) {
    }
  }

 private:
  Statement* statement_;
};

class Database {
 public:
  // Opens (creating it when missing) the database at `path`; ":memory:" is a private
  // in-memory database.
  explicit Database(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements that return no rows.
  void exec(const std::string& sql);
  // The first column of the first row of `sql` as text ("" when there is no row).
  std::string exec_text(const std::string& sql);

  // A prepared statement, prepared once per distinct `sql` and reused. `sql` must outlive
  // the Database (a string literal).
  Query query(std::string_view sql);

  // Rows changed by the last INSERT, UPDATE or DELETE (not counting triggers).
  std::int64_t changes() const noexcept;

  sqlite3* handle() const noexcept { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string_view, std::unique_ptr<Statement>> statements_;
};

// BEGIN ... COMMIT, rolled back when destroyed without commit(). A write transaction is
// BEGIN IMMEDIATE: it takes the write lock at once instead of failing at its first write.
class Transaction {
 public:
  enum class Kind { read, write };
  Transaction(Database& db, Kind kind);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void commit();

 private:
  Database& db_;
  bool open_ = true;
};

}  // namespace notify::sqlite
