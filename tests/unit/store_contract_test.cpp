// The Store contract (include/notify/store.hpp), run against every store in
// NOTIFY_TEST_STORES: the same cases, the same expected answers.
#include "store_factories.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using notify::Notification;
using test::broadcast;
using test::draft;

namespace {
std::vector<std::string> titles(const std::vector<Notification>& notifications) {
  std::vector<std::string> out;
  for (const auto& n : notifications)
    out.push_back(n.title);
  return out;
}
}  // namespace

TEST_CASE_TEMPLATE("store: ids increase and snapshots list unread newest first", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto a = store->append(draft("alice", "a1"));
  const auto b = store->append(draft("bob", "b1"));
  const auto c = store->append(draft("alice", "a2"));
  CHECK(a.id == "1");
  CHECK(b.id == "2");
  CHECK(c.id == "3");
  CHECK(c.created_at.size() == 24);
  CHECK(store->head() == 3);
  const auto snap = store->snapshot("alice", 10);
  REQUIRE(snap.unread.size() == 2);
  CHECK(snap.unread[0].title == "a2");
  CHECK(snap.unread[1].title == "a1");
  CHECK(snap.unread_count == 2);
  CHECK(snap.cursor == 3);
  CHECK(store->snapshot("nobody", 10).unread.empty());
}

TEST_CASE_TEMPLATE("store: append_all stores drafts as append() would, in order", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make(test::StoreLimits{3, 2});
  store->append(draft("alice", "before"));
  std::vector<Notification> drafts;
  for (int i = 0; i < 5; ++i)
    drafts.push_back(draft("alice", "a" + std::to_string(i)));
  drafts.push_back(draft("bob", "b0"));
  drafts.push_back(broadcast("x0"));
  drafts.push_back(broadcast("x1"));
  drafts.push_back(broadcast("x2"));
  const auto stored = store->append_all(drafts);
  REQUIRE(stored.size() == drafts.size());
  for (std::size_t i = 0; i < stored.size(); ++i) {
    CAPTURE(i);
    CHECK(stored[i].id == std::to_string(i + 2));
    CHECK(stored[i].title == drafts[i].title);
    CHECK(stored[i].created_at.size() == 24);
    CHECK(stored[i].broadcast == drafts[i].broadcast);
  }
  CHECK(stored.back().user_id.empty());
  CHECK(store->head() == 10);
  // The limits hold within one call: alice keeps her last 3, everyone the last 2 broadcasts.
  CHECK(titles(store->list("alice", false, 10)) ==
        std::vector<std::string>{"x2", "x1", "a4", "a3", "a2"});
  CHECK(titles(store->list("bob", false, 10)) == std::vector<std::string>{"x2", "x1", "b0"});
  CHECK(store->append_all({}).empty());
  CHECK(store->append(draft("bob", "after")).id == "11");
}

namespace {
Notification keyed(Notification draft, const std::string& key) {
  draft.idempotency_key = key;
  return draft;
}
}  // namespace

TEST_CASE_TEMPLATE("store: a known idempotency key stores nothing and answers the first id", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto first = store->append(keyed(draft("alice", "first"), "order-42:shipped"));
  CHECK(first.id == "1");
  CHECK_FALSE(first.replayed);
  const auto again = store->append(keyed(draft("alice", "first"), "order-42:shipped"));
  CHECK(again.replayed);
  CHECK_FALSE(again.replay_differs);
  CHECK(again.id == first.id);
  CHECK(again.created_at == first.created_at);
  // The key used for another notification: not stored either, and said so.
  const auto other = store->append(keyed(draft("alice", "other"), "order-42:shipped"));
  CHECK(other.replayed);
  CHECK(other.replay_differs);
  CHECK(other.id == first.id);
  CHECK(store->head() == 1);
  const auto listed = store->list("alice", false, 10);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].title == "first");
  CHECK(listed[0].idempotency_key.empty());  // the key is not part of the notification
  CHECK(store->unread_count("alice") == 1);

  // A key is per recipient: another user, and the broadcasts, have their own.
  const auto bob = store->append(keyed(draft("bob"), "order-42:shipped"));
  CHECK_FALSE(bob.replayed);
  CHECK(bob.id == "2");
  const auto everyone = store->append(keyed(broadcast("x"), "order-42:shipped"));
  CHECK_FALSE(everyone.replayed);
  CHECK(everyone.id == "3");
  const auto everyone_again = store->append(keyed(broadcast("x"), "order-42:shipped"));
  CHECK(everyone_again.replayed);
  CHECK_FALSE(everyone_again.replay_differs);
  CHECK(everyone_again.id == "3");
  CHECK(everyone_again.user_id.empty());
  // Drafts without a key are stored every time.
  CHECK(store->append(draft("alice", "plain")).id == "4");
  CHECK(store->append(draft("alice", "plain")).id == "5");

  // Within one append_all: the second draft with a key repeats the first; a key known from
  // before is a replay too. Only the new one takes a number.
  const auto batch = store->append_all({keyed(draft("carol"), "k"), keyed(draft("carol"), "k"),
                                        keyed(draft("alice", "third"), "order-42:shipped")});
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].id == "6");
  CHECK_FALSE(batch[0].replayed);
  CHECK(batch[1].id == "6");
  CHECK(batch[1].replayed);
  CHECK_FALSE(batch[1].replay_differs);
  CHECK(batch[2].id == "1");
  CHECK(batch[2].replayed);
  CHECK(batch[2].replay_differs);  // "third" under the key of "first"
  CHECK_FALSE(batch[0].replay_differs);
  CHECK(store->head() == 6);
  CHECK(store->list("carol", false, 10).size() == 2);  // hers and the broadcast
  CHECK(titles(store->list("alice", false, 10)) ==
        std::vector<std::string>{"plain", "plain", "x", "first"});
}

TEST_CASE_TEMPLATE("store: an idempotency key is forgotten after the window", F,
                   NOTIFY_TEST_STORES) {
  test::StoreLimits limits;
  limits.idempotency_window = std::chrono::milliseconds(1000);
  auto store = F::make(limits);
  const auto first = store->append(keyed(draft("alice"), "k"));
  CHECK(store->append(keyed(draft("alice"), "k")).replayed);
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  const auto later = store->append(keyed(draft("alice"), "k"));
  CHECK_FALSE(later.replayed);
  CHECK(later.id != first.id);
  CHECK(store->append(keyed(draft("alice"), "k")).id == later.id);  // kept anew
  CHECK(store->list("alice", false, 10).size() == 2);
}

TEST_CASE_TEMPLATE("store: snapshot limit does not change the count", F, NOTIFY_TEST_STORES) {
  auto store = F::make();
  for (int i = 0; i < 5; ++i)
    store->append(draft("u", "n" + std::to_string(i)));
  const auto snap = store->snapshot("u", 2);
  CHECK(snap.unread.size() == 2);
  CHECK(snap.unread_count == 5);
  CHECK(store->snapshot("u", 0).unread.empty());
}

TEST_CASE_TEMPLATE("store: every field comes back as it went in", F, NOTIFY_TEST_STORES) {
  auto store = F::make();
  Notification d = draft("alice", "Title \xE2\x9C\x93");
  d.body = "line 1\nline 2";
  d.actor_id = "bob";
  d.entity_type = "order";
  d.entity_id = "o-42";
  d.action_url = "/orders/42";
  d.image_url = "https://example.com/a.png";
  d.read_at = "2020-01-01T00:00:00.000Z";  // ignored: a new notification is unread
  d.data = {{"n", 1}, {"list", {1, 2.5, "x"}}, {"nested", {{"ok", true}}}};
  const auto stored = store->append(d);
  CHECK(stored.read_at.empty());
  const auto listed = store->list("alice", false, 10);
  REQUIRE(listed.size() == 1);
  const auto& n = listed[0];
  CHECK(n.id == stored.id);
  CHECK(n.user_id == "alice");
  CHECK_FALSE(n.broadcast);
  CHECK(n.type == "comment");
  CHECK(n.title == d.title);
  CHECK(n.body == d.body);
  CHECK(n.actor_id == "bob");
  CHECK(n.entity_type == "order");
  CHECK(n.entity_id == "o-42");
  CHECK(n.action_url == "/orders/42");
  CHECK(n.image_url == d.image_url);
  CHECK(n.data == d.data);
  CHECK(n.created_at == stored.created_at);
  CHECK(n.read_at.empty());

  const auto b = store->append(broadcast("all"));
  const auto listed_b = store->list("carol", false, 10);
  REQUIRE(listed_b.size() == 1);
  CHECK(listed_b[0].broadcast);
  CHECK(listed_b[0].user_id.empty());
  CHECK(listed_b[0].data.is_null());
  CHECK(listed_b[0].id == b.id);
}

TEST_CASE_TEMPLATE("store: mark read and read all", F, NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto a = store->append(draft("alice", "a1"));
  store->append(draft("alice", "a2"));
  const auto head_before = store->head();
  auto r = store->mark_read("alice", a.id);
  CHECK(r.ids == std::vector<std::string>{a.id});
  CHECK(r.unread_count == 1);
  CHECK(r.seq == head_before + 1);
  CHECK(store->head() == r.seq);
  CHECK_FALSE(store->list("alice", false, 10)[1].read_at.empty());
  SUBCASE("twice changes nothing") {
    auto again = store->mark_read("alice", a.id);
    CHECK(again.ids.empty());
    CHECK(again.unread_count == 1);
    CHECK(again.seq == store->head());
    CHECK(store->head() == r.seq);
  }
  SUBCASE("another user's id changes nothing") {
    auto other = store->mark_read("bob", a.id);
    CHECK(other.ids.empty());
    CHECK(store->unread_count("alice") == 1);
  }
  SUBCASE("garbage ids change nothing") {
    CHECK(store->mark_read("alice", "x").ids.empty());
    CHECK(store->mark_read("alice", "999").ids.empty());
    CHECK(store->mark_read("alice", "99999999999999999999").ids.empty());
    CHECK(store->head() == r.seq);
  }
  SUBCASE("read all") {
    auto all = store->mark_all_read("alice");
    CHECK(all.ids.size() == 1);
    CHECK(all.unread_count == 0);
    CHECK(all.seq == r.seq + 1);
    CHECK(store->list("alice", true, 10).empty());
    CHECK(store->list("alice", false, 10).size() == 2);
    auto again = store->mark_all_read("alice");
    CHECK(again.ids.empty());
    CHECK(again.seq == all.seq);
  }
}

TEST_CASE_TEMPLATE("store: mark_many makes each change as mark_read/mark_all_read would, in order",
                   F, NOTIFY_TEST_STORES) {
  auto many = F::make();
  auto one_by_one = F::make();
  for (auto* store : {many.get(), one_by_one.get()}) {
    store->append(draft("alice", "a1"));  // 1
    store->append(draft("bob", "b1"));    // 2
    store->append(broadcast("all"));      // 3
    store->append(draft("alice", "a2"));  // 4
  }
  CHECK(many->mark_many({}).empty());
  const auto read = [](const char* user, const char* id) {
    return notify::MarkQuery{user, std::string(id)};
  };
  const auto read_all = [](const char* user) { return notify::MarkQuery{user, std::nullopt}; };
  const std::vector<notify::MarkQuery> marks{
      read("alice", "1"), read_all("bob"),    read("carol", "3"), read("alice", "x"),
      read("alice", "1"), read("dave", "2"),  read_all("alice"),  read_all("alice"),
      read("bob", "3"),   read("carol", "99")};
  const auto answers = many->mark_many(marks);
  REQUIRE(answers.size() == marks.size());
  for (std::size_t i = 0; i < marks.size(); ++i) {
    CAPTURE(i);
    const auto& m = marks[i];
    const auto expected =
        m.id ? one_by_one->mark_read(m.user, *m.id) : one_by_one->mark_all_read(m.user);
    CHECK(answers[i].ids == expected.ids);
    CHECK(answers[i].unread_count == expected.unread_count);
    CHECK(answers[i].seq == expected.seq);
  }
  // What the answers say, not only that they agree: a number for each change that changed
  // something, in the order asked; the head for the others.
  using Ids = std::vector<std::string>;
  CHECK(answers[0].ids == Ids{"1"});
  CHECK(answers[0].seq == 5);
  CHECK(answers[1].ids == Ids{"2", "3"});
  CHECK(answers[1].seq == 6);
  CHECK(answers[2].ids == Ids{"3"});
  CHECK(answers[2].seq == 7);
  for (const std::size_t i : {3, 4, 5}) {
    CAPTURE(i);
    CHECK(answers[i].ids.empty());
    CHECK(answers[i].seq == 7);
  }
  CHECK(answers[6].ids == Ids{"4", "3"});
  CHECK(answers[6].seq == 8);
  CHECK(answers[6].unread_count == 0);
  CHECK(answers[7].ids.empty());
  CHECK(answers[8].ids.empty());  // bob read it with the rest
  CHECK(answers[8].unread_count == 0);
  CHECK(answers[9].ids.empty());
  CHECK(many->head() == 8);
  CHECK(many->unread_count("carol") == 0);
  CHECK(many->unread_count("dave") == 1);
}

TEST_CASE_TEMPLATE("store: broadcasts are seen by every user with their own read state", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  store->append(draft("alice", "a1"));
  const auto b = store->append(broadcast("maintenance"));
  CHECK(b.user_id.empty());
  CHECK(b.broadcast);
  CHECK(store->unread_count("alice") == 2);
  CHECK(store->unread_count("carol") == 1);
  CHECK(store->mark_read("carol", b.id).ids == std::vector<std::string>{b.id});
  CHECK(store->mark_read("carol", b.id).ids.empty());
  CHECK(store->unread_count("carol") == 0);
  CHECK(store->unread_count("alice") == 2);
  const auto list = store->list("carol", false, 10);
  REQUIRE(list.size() == 1);
  CHECK_FALSE(list[0].read_at.empty());
  CHECK(store->list("carol", true, 10).empty());
  CHECK(store->list("alice", false, 10)[0].read_at.empty());
  CHECK(titles(store->list("alice", true, 10)) == std::vector<std::string>{"maintenance", "a1"});
}

TEST_CASE_TEMPLATE("store: read all covers own notifications, then broadcasts, oldest first", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto b1 = store->append(broadcast("b1"));
  const auto a1 = store->append(draft("alice", "a1"));
  const auto b2 = store->append(broadcast("b2"));
  const auto a2 = store->append(draft("alice", "a2"));
  store->append(draft("bob", "x"));
  store->mark_read("alice", b1.id);
  const auto all = store->mark_all_read("alice");
  CHECK(all.ids == std::vector<std::string>{a1.id, a2.id, b2.id});
  CHECK(all.unread_count == 0);
  CHECK(all.seq == store->head());
  CHECK(store->unread_count("bob") == 3);
  CHECK(store->unread_count("carol") == 2);
}

TEST_CASE_TEMPLATE("store: resume gives the state at the cursor and what came after", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  store->append(draft("alice", "a1"));
  store->append(draft("alice", "a2"));
  const auto cursor = store->head();
  store->append(draft("bob", "b1"));
  store->append(draft("alice", "a3"));
  store->append(broadcast("all"));
  auto r = store->resume("alice", cursor, 10, 100);
  REQUIRE(r);
  CHECK(r->snapshot.cursor == cursor);
  CHECK(r->snapshot.unread.size() == 2);
  CHECK(r->snapshot.unread_count == 2);
  REQUIRE(r->missed.size() == 2);
  CHECK(r->missed[0].title == "a3");
  CHECK(r->missed[1].title == "all");
  CHECK(r->head == store->head());

  CHECK_FALSE(store->resume("alice", store->head() + 1, 10, 100));  // from the future
  CHECK_FALSE(store->resume("alice", cursor, 10, 1));               // too much missed
  CHECK(store->resume("alice", cursor, 10, 2));                     // exactly the limit

  auto at_head = store->resume("alice", store->head(), 1, 100);
  REQUIRE(at_head);
  CHECK(at_head->missed.empty());
  CHECK(at_head->snapshot.unread.size() == 1);
  CHECK(at_head->snapshot.unread_count == 4);

  auto count_only = store->resume("alice", cursor, 0, 100);  // what a gap repair asks
  REQUIRE(count_only);
  CHECK(count_only->snapshot.unread.empty());
  CHECK(count_only->snapshot.unread_count == 2);
  CHECK(count_only->missed.size() == 2);

  auto from_zero = store->resume("alice", 0, 10, 100);
  REQUIRE(from_zero);
  CHECK(titles(from_zero->missed) == std::vector<std::string>{"a1", "a2", "a3", "all"});
  CHECK(from_zero->snapshot.unread.empty());
  CHECK(from_zero->snapshot.unread_count == 0);
}

TEST_CASE_TEMPLATE("store: resume_many answers each query as resume() does, in order", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto a1 = store->append(draft("alice", "a1"));
  const auto cursor = store->head();
  store->append(draft("bob", "b1"));
  store->append(draft("alice", "a2"));
  store->append(broadcast("all"));
  store->mark_read("alice", a1.id);
  CHECK(store->resume_many({}, 0, 100).empty());

  // More queries than a batch of the hub's repair, with every kind of answer mixed in.
  std::vector<notify::ResumeQuery> queries;
  for (int i = 0; i < 50; ++i) {
    queries.push_back({"alice", cursor});
    queries.push_back({"bob", 0});
    queries.push_back({"alice", store->head() + 1});  // from the future: refused
    queries.push_back({"carol " + std::to_string(i), cursor});
  }
  for (const std::size_t limit : {std::size_t{0}, std::size_t{10}}) {
    CAPTURE(limit);
    const auto answers = store->resume_many(queries, limit, 100);
    REQUIRE(answers.size() == queries.size());
    for (std::size_t i = 0; i < queries.size(); ++i) {
      CAPTURE(i);
      const auto one = store->resume(queries[i].user, queries[i].cursor, limit, 100);
      REQUIRE(answers[i].has_value() == one.has_value());
      if (!one)
        continue;
      CHECK(answers[i]->head == one->head);
      CHECK(answers[i]->last_read == one->last_read);
      CHECK(answers[i]->snapshot.cursor == queries[i].cursor);
      CHECK(answers[i]->snapshot.unread_count == one->snapshot.unread_count);
      CHECK(titles(answers[i]->snapshot.unread) == titles(one->snapshot.unread));
      CHECK(titles(answers[i]->missed) == titles(one->missed));
    }
    // What the answers say, not only that they agree with resume().
    CHECK(titles(answers[0]->missed) == std::vector<std::string>{"a2", "all"});
    CHECK(answers[0]->last_read > cursor);
    CHECK(titles(answers[1]->missed) == std::vector<std::string>{"b1", "all"});
    CHECK_FALSE(answers[2]);
    CHECK(titles(answers[3]->missed) == std::vector<std::string>{"all"});
  }
  CHECK_FALSE(store->resume_many({{"alice", cursor}}, 0, 1).front());  // too much missed
}

TEST_CASE_TEMPLATE("store: snapshot_many answers each user as snapshot() does, in order", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto a1 = store->append(draft("alice", "a1"));
  store->append(draft("alice", "a2"));
  store->append(draft("bob", "b1"));
  store->append(broadcast("all"));
  store->mark_read("alice", a1.id);
  CHECK(store->snapshot_many({}, 10).empty());

  std::vector<std::string> users;
  for (int i = 0; i < 40; ++i) {  // more than a batch of the hub's repair
    users.push_back("alice");
    users.push_back("bob");
    users.push_back("nobody " + std::to_string(i));
  }
  for (const std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{10}}) {
    CAPTURE(limit);
    const auto answers = store->snapshot_many(users, limit);
    REQUIRE(answers.size() == users.size());
    for (std::size_t i = 0; i < users.size(); ++i) {
      CAPTURE(i);
      const auto one = store->snapshot(users[i], limit);
      CHECK(answers[i].cursor == one.cursor);
      CHECK(answers[i].unread_count == one.unread_count);
      CHECK(titles(answers[i].unread) == titles(one.unread));
    }
    // What the answers say, not only that they agree with snapshot().
    CHECK(answers[0].cursor == store->head());
    CHECK(answers[0].unread_count == 2);  // a2, all
    CHECK(answers[1].unread_count == 2);  // b1, all
    CHECK(answers[2].unread_count == 1);  // all
    CHECK(answers[1].unread.size() == std::min<std::size_t>(limit, 2));
  }
}

TEST_CASE_TEMPLATE("store: resume after read-state changes", F, NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto a1 = store->append(draft("alice", "a1"));
  store->append(draft("alice", "a2"));
  const auto cursor = store->head();
  const auto a3 = store->append(draft("alice", "a3"));
  const auto b = store->append(broadcast("b"));
  store->mark_read("alice", a1.id);
  store->mark_read("alice", a3.id);
  store->mark_read("alice", b.id);
  auto r = store->resume("alice", cursor, 10, 100);
  REQUIRE(r);
  CHECK(r->head == store->head());
  REQUIRE(r->missed.size() == 2);  // read-state changes are not notifications
  CHECK_FALSE(r->missed[0].read_at.empty());
  CHECK_FALSE(r->missed[1].read_at.empty());
  CHECK(titles(r->snapshot.unread) == std::vector<std::string>{"a2"});
  CHECK(r->snapshot.unread_count == 1);
}

TEST_CASE_TEMPLATE("store: resume tells where the user's latest read change is", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make();
  const auto a1 = store->append(draft("alice", "a1"));
  const auto b = store->append(broadcast("b"));
  store->append(draft("alice", "a2"));
  auto last_read = [&](const std::string& user) {
    auto r = store->resume(user, 0, 10, 100);
    REQUIRE(r);
    return r->last_read;
  };
  CHECK(last_read("alice") == 0);  // nothing read yet

  const auto one = store->mark_read("alice", a1.id);
  REQUIRE(one.ids.size() == 1);
  CHECK(last_read("alice") == one.seq);
  CHECK(last_read("bob") == 0);

  // Changes of nothing, and other users' changes, leave it where it is.
  CHECK(store->mark_read("alice", a1.id).ids.empty());
  CHECK(store->mark_read("bob", a1.id).ids.empty());  // not bob's
  CHECK(store->mark_read("alice", "12345678901").ids.empty());
  const auto bobs = store->mark_read("bob", b.id);
  REQUIRE(bobs.ids.size() == 1);
  CHECK(last_read("bob") == bobs.seq);
  store->append(draft("alice", "a3"));
  CHECK(last_read("alice") == one.seq);

  const auto all = store->mark_all_read("alice");
  REQUIRE(all.ids.size() == 3);  // a2, a3 and the broadcast
  CHECK(all.seq > one.seq);
  CHECK(last_read("alice") == all.seq);
  CHECK(store->mark_all_read("alice").ids.empty());
  CHECK(last_read("alice") == all.seq);
}

TEST_CASE_TEMPLATE("store: a cursor older than the kept history is refused", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make(test::StoreLimits{3, 3});
  for (int i = 0; i < 5; ++i)
    store->append(draft("u", std::to_string(i)));
  CHECK(store->list("u", false, 100).size() == 3);
  CHECK(store->unread_count("u") == 3);
  CHECK_FALSE(store->resume("u", 1, 10, 100));
  CHECK(store->resume("u", 2, 10, 100));
  CHECK(store->resume("other", 1, 10, 100));  // nothing of theirs was dropped
}

TEST_CASE_TEMPLATE("store: removed broadcasts refuse old cursors for everyone", F,
                   NOTIFY_TEST_STORES) {
  auto store = F::make(test::StoreLimits{10, 2});
  const auto b1 = store->append(broadcast("b1"));
  store->append(broadcast("b2"));
  store->mark_read("alice", b1.id);
  CHECK(store->unread_count("alice") == 1);
  store->append(broadcast("b3"));  // b1 goes, and alice's read mark of it with it
  CHECK(titles(store->list("alice", false, 10)) == std::vector<std::string>{"b3", "b2"});
  CHECK(store->unread_count("alice") == 2);
  CHECK(store->unread_count("bob") == 2);
  CHECK(store->mark_read("alice", b1.id).ids.empty());
  REQUIRE(b1.id == "1");
  CHECK_FALSE(store->resume("bob", 0, 10, 100));
  CHECK(store->resume("bob", 1, 10, 100));
  const auto all = store->mark_all_read("alice");
  CHECK(all.ids.size() == 2);
  CHECK(all.unread_count == 0);
}
