// Consumer of notify::sqlite (tests/package): a SqliteStore behind a NotificationHub.
#include <notify/hub.hpp>
#include <notify/sqlite_store.hpp>

#include <asio/io_context.hpp>

#include <cstdio>
#include <memory>

int main() {
  int failures = 0;
  auto store = std::make_shared<notify::SqliteStore>(":memory:");
  if (store->schema_version() != notify::SqliteStore::current_schema_version) {
    std::fprintf(stderr, "schema version %d\n", store->schema_version());
    ++failures;
  }

  asio::io_context io;
  notify::NotificationHub hub(io.get_executor(), {}, store);
  notify::Notification n;
  n.user_id = "u";
  n.type = "comment";
  n.title = "stored in SQLite";
  const auto id = hub.publish(n);
  const auto stored = store->list("u", false, 10);
  if (id.empty() || hub.unread_count("u") != 1 || stored.size() != 1 || stored[0].id != id) {
    std::fprintf(stderr, "publish gave id %s, unread %llu\n", id.c_str(),
                 static_cast<unsigned long long>(hub.unread_count("u")));
    ++failures;
  }
  hub.stop();
  io.run();

  std::printf("notify::sqlite: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
