#include "database.hpp"

#include <limits>
#include <stdexcept>

namespace notify::sqlite {

namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int code) const override { return sqlite3_errstr(code); }
};

}  // namespace

const std::error_category& category() noexcept {
  static const Category instance;
  return instance;
}

namespace {
// std::system_error appends the code's message (sqlite3_errstr) itself; the connection's
// message is added only when it says more ("no such table: x" rather than "SQL logic error").
std::string describe(sqlite3* db, int code, std::string_view context) {
  std::string what(context);
  if (db) {
    const std::string_view message = sqlite3_errmsg(db);
    if (message != sqlite3_errstr(code)) {
      what += ": ";
      what += message;
    }
  }
  return what;
}
}  // namespace

void throw_error(sqlite3* db, int code, std::string_view context) {
  throw std::system_error(code, category(), describe(db, code, context));
}

// --- Statement --------------------------------------------------------------------------

Statement::Statement(sqlite3* db, std::string_view sql) : db_(db) {
  if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw std::invalid_argument("sqlite: statement too long");
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  if (rc != SQLITE_OK)
    throw_error(db, rc, "prepare '" + std::string(sql) + "'");
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::bind(int index, std::int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK)
    throw_error(db_, rc, "bind");
}

void Statement::bind(int index, std::string_view text) {
  // A null data pointer would bind NULL, and an empty string_view may have one.
  const char* data = text.data() ? text.data() : "";
  const int rc =
      sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK)
    throw_error(db_, rc, "bind");
}

void Statement::bind_null(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK)
    throw_error(db_, rc, "bind");
}

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW)
    return true;
  if (rc == SQLITE_DONE)
    return false;
  throw_error(db_, rc, sqlite3_sql(stmt_));
}

void Statement::reset() noexcept {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::string Statement::text(int column) const {
  const auto* data = sqlite3_column_text(stmt_, column);
  if (!data)
    return {};
  return std::string(reinterpret_cast<const char*>(data),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// --- Database ---------------------------------------------------------------------------

Database::Database(const std::string& path) {
  // NOMUTEX: the owner serializes access, SQLite's own per-connection mutex would be a second
  // lock on every call.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string what = describe(db_, rc, "open");
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::system_error(rc, category(), what);
  }
  sqlite3_extended_result_codes(db_, 1);
}

Database::~Database() {
  statements_.clear();  // every statement must be finalized before the close
  sqlite3_close(db_);
}

void Database::exec(const std::string& sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc != SQLITE_OK) {
    std::string what = sql;
    if (error && std::string_view(error) != sqlite3_errstr(rc))
      (what += ": ") += error;
    sqlite3_free(error);
    throw std::system_error(rc, category(), what);
  }
}

std::string Database::exec_text(const std::string& sql) {
  Statement statement(db_, sql);
  return statement.step() ? statement.text(0) : std::string();
}

Query Database::query(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end())
    it = statements_.emplace(sql, std::make_unique<Statement>(db_, sql)).first;
  return Query(*it->second);
}

std::int64_t Database::changes() const noexcept {
  return sqlite3_changes64(db_);
}

// --- Transaction ------------------------------------------------------------------------

Transaction::Transaction(Database& db, Kind kind) : db_(db) {
  db_.query(kind == Kind::write ? "BEGIN IMMEDIATE" : "BEGIN").run();
}

Transaction::~Transaction() {
  if (!open_)
    return;
  // A failed statement may already have rolled the transaction back; then there is nothing
  // left to do and the error is not worth more than the one being thrown.
  if (!sqlite3_get_autocommit(db_.handle()))
    sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  db_.query("COMMIT").run();
  open_ = false;
}

}  // namespace notify::sqlite
