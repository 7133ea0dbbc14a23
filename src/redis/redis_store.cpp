#include <notify/redis_store.hpp>

#include "connection.hpp"
#include "scripts.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>

namespace notify {

using namespace redis_detail;

namespace {

enum Script : std::size_t {
  s_append,
  s_snapshot,
  s_resume,
  s_list,
  s_unread,
  s_mark,
  s_mark_all,
  s_count
};

// Limits go through Lua numbers and Redis LIMIT arguments: keep them plain integers.
std::string limit_arg(std::size_t limit) {
  return std::to_string(std::min<std::size_t>(limit, 100000000));
}

std::uint64_t to_u64(const Reply& r) {
  if (r.is_nil())
    return 0;
  const auto text = r.text();
  auto v = parse_sequence(text);
  if (!v)
    throw RedisError("redis store: '" + text + "' is not a sequence number");
  return *v;
}

const Reply& element(const Reply& r, std::size_t i) {
  if (!r.is_array() || r.elements.size() <= i)
    throw RedisError("redis store: unexpected reply");
  return r.elements[i];
}

std::vector<Notification> to_notifications(const Reply& r) {
  if (!r.is_array())
    throw RedisError("redis store: unexpected reply");
  std::vector<Notification> out;
  out.reserve(r.elements.size() / 2);
  for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    auto n = nlohmann::json::parse(r.elements[i].str).get<Notification>();
    n.read_at = r.elements[i + 1].str;
    out.push_back(std::move(n));
  }
  return out;
}

std::uint64_t to_count(const Reply& r) {
  const auto v = r.as_integer();
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

}  // namespace

class RedisStore::Impl {
 public:
  explicit Impl(RedisStoreOptions options)
      : options_(std::move(options)), pool_(options_.redis, options_.pool_size) {
    check_address(options_.redis, "RedisStore");
    if (options_.max_per_user == 0 || options_.max_broadcasts == 0)
      throw std::invalid_argument("RedisStore: history sizes must be at least 1");
    if (options_.max_age.count() < 0)
      throw std::invalid_argument("RedisStore: max_age must not be negative");
    check_idempotency_window(options_.idempotency_window, "RedisStore");
    if (options_.wait_replicas > 0 && (options_.replica_timeout.count() <= 0 ||
                                       options_.replica_timeout >= options_.redis.command_timeout))
      throw std::invalid_argument(
          "RedisStore: replica_timeout must be above 0 and below redis.command_timeout");
    sources_[s_append] = std::string(scripts::prelude) + scripts::append;
    sources_[s_snapshot] = std::string(scripts::prelude) + scripts::snapshot;
    sources_[s_resume] = std::string(scripts::prelude) + scripts::resume;
    sources_[s_list] = std::string(scripts::prelude) + scripts::list;
    sources_[s_unread] = std::string(scripts::prelude) + scripts::unread;
    sources_[s_mark] = std::string(scripts::prelude) + scripts::mark_read;
    sources_[s_mark_all] = std::string(scripts::prelude) + scripts::mark_all_read;
  }

  // One call of a script: ARGV = P, E (the user, escaped), args...; KEYS = add_script_keys(E),
  // and `extra_key` after them when not empty.
  struct Call {
    std::string user_escaped;
    std::vector<std::string> args;
    std::string extra_key;
  };

  // The keys every script may touch, in the order the prelude reads them from KEYS.
  // Each name is made in place, with one allocation at most.
  void add_script_keys(Command& command, const std::string& user_escaped) const {
    const std::string_view p = options_.redis.prefix, e = user_escaped;
    const auto add = [&command](std::initializer_list<std::string_view> parts) {
      std::size_t size = 0;
      for (const auto part : parts)
        size += part.size();
      auto& key = command.emplace_back();
      key.reserve(size);
      for (const auto part : parts)
        key.append(part);
    };
    add({p, "seq"});
    add({p, "base"});
    add({p, "n"});
    add({p, "ts"});
    add({p, "b"});
    add({p, "trim"});
    add({p, "u:", e, ":h"});
    add({p, "u:", e, ":unread"});
    add({p, "u:", e, ":read"});
    add({p, "u:", e, ":br"});
    add({p, "u:", e, ":lr"});
  }
  static constexpr std::size_t script_key_count = 11;

  Reply eval(Script script, std::string_view user_escaped, std::vector<std::string> args) {
    return eval(script, Call{std::string(user_escaped), std::move(args), {}});
  }
  Reply eval(Script script, Call call) {
    std::vector<Call> calls;  // not a braced list: that would copy the arguments
    calls.push_back(std::move(call));
    return std::move(eval_all(script, calls).front());
  }

  // Runs the calls, pipelined on one connection, and returns their replies in order; an
  // error reply throws RedisError. EVALSHA, or EVAL where Redis does not know the script
  // (a restart, SCRIPT FLUSH). A call the server refused without running it for a while
  // (says_try_again: still loading its data after a restart, a cluster that is down or
  // reconfiguring after a failover, a server that is not the primary any more) is sent
  // again after a short pause, up to command_timeout; the calls that ran are not.
  std::vector<Reply> eval_all(Script script, const std::vector<Call>& calls) {
    return eval_all(std::vector<Script>(calls.size(), script), calls);
  }
  // eval_all() with a script for each call: `scripts[i]` runs `calls[i]`.
  std::vector<Reply> eval_all(const std::vector<Script>& scripts, const std::vector<Call>& calls) {
    const auto deadline = Clock::now() + options_.redis.command_timeout;
    std::vector<Reply> replies(calls.size());
    std::vector<std::size_t> pending(calls.size());
    for (std::size_t i = 0; i < pending.size(); ++i)
      pending[i] = i;
    auto pause = std::chrono::milliseconds(5);
    for (;;) {
      std::string refusal;
      pending = eval_pending(scripts, calls, pending, replies, refusal);
      if (pending.empty())
        return replies;
      const auto now = Clock::now();
      if (now >= deadline)
        throw RedisError("redis store: " + refusal + " (still refused after " +
                         std::to_string(options_.redis.command_timeout.count()) + " ms)");
      std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, std::chrono::milliseconds(100));
    }
  }

  // One call of `script` per item, pipelined (eval_all): `call(item)` makes the item's call,
  // `answer(reply, item)` reads its reply. The answers come in the items' order.
  template <typename Item, typename MakeCall, typename Answer>
  auto eval_each(Script script, const std::vector<Item>& items, MakeCall call, Answer answer) {
    std::vector<std::invoke_result_t<Answer, const Reply&, const Item&>> answers;
    if (items.empty())
      return answers;
    std::vector<Call> calls;
    calls.reserve(items.size());
    for (const auto& item : items)
      calls.push_back(call(item));
    const auto replies = eval_all(script, calls);
    answers.reserve(replies.size());
    for (std::size_t i = 0; i < replies.size(); ++i)
      answers.push_back(answer(replies[i], items[i]));
    return answers;
  }

  // One turn of eval_all on one connection: runs the `pending` calls and puts their replies
  // into `replies`. Returns those to send again later (says_try_again; `refusal` holds the
  // first one's text). Throws RedisError for any other error reply. Several writes go as one
  // transaction (run_calls()): Redis runs all of them or none, so a state that changes
  // within the pipeline (a long script of another client's begun or ended, a failover, the
  // end of a slot's migration) cannot refuse one draft and run the next. The refused
  // transaction is sent again whole, and its drafts keep their order. (A call refused
  // while one after it ran is still sent again, with a later id, should Redis ever do that:
  // the hub hands a batch to the bus in id order.)
  std::vector<std::size_t> eval_pending(const std::vector<Script>& scripts,
                                        const std::vector<Call>& calls,
                                        const std::vector<std::size_t>& pending,
                                        std::vector<Reply>& replies, std::string& refusal) {
    return pool_.with([&](SyncConnection& c) -> std::vector<std::size_t> {
      std::array<std::optional<std::string>, s_count> shas;
      bool writing = false;
      for (const auto i : pending) {
        auto& sha = shas[scripts[i]];
        if (!sha && !(sha = script_sha(c, scripts[i], refusal)))
          return pending;
        writing = writing || writes(scripts[i]);
      }
      std::vector<Command> commands;
      commands.reserve(pending.size() + 3);
      for (const auto i : pending) {
        const auto& call = calls[i];
        const auto keys = script_key_count + (call.extra_key.empty() ? 0 : 1);
        Command command{"EVALSHA", *shas[scripts[i]], std::to_string(keys)};
        command.reserve(3 + keys + 2 + call.args.size());
        add_script_keys(command, call.user_escaped);
        if (!call.extra_key.empty())
          command.push_back(call.extra_key);
        command.push_back(options_.redis.prefix);
        command.push_back(call.user_escaped);
        command.insert(command.end(), call.args.begin(), call.args.end());
        commands.push_back(std::move(command));
      }
      const bool wait = writing && options_.wait_replicas > 0;
      Reply replicas;
      auto got = run_calls(c, commands, writing, wait, replicas);
      std::vector<Command> again;
      std::vector<std::size_t> again_at;
      for (std::size_t k = 0; k < got.size(); ++k) {
        if (has_error_code(got[k], "NOSCRIPT")) {
          commands[k][0] = "EVAL";
          commands[k][1] = sources_[scripts[pending[k]]];
          again.push_back(std::move(commands[k]));
          again_at.push_back(k);
        }
      }
      if (!again.empty()) {
        // This WAIT covers the first pipeline's writes too: it waits for the connection's
        // latest write.
        auto got_again = run_calls(c, again, writing, wait, replicas);
        for (std::size_t k = 0; k < again_at.size(); ++k)
          got[again_at[k]] = std::move(got_again[k]);
      }
      std::vector<std::size_t> later;
      bool ran = false;
      for (std::size_t k = 0; k < got.size(); ++k) {
        const auto& reply = got[k];
        if (reply.is_error() && !says_try_again(reply))
          throw RedisError("redis store: " + reply.str);
        if (reply.is_error()) {
          if (later.empty())
            refusal = reply.str;
          later.push_back(pending[k]);
          continue;
        }
        ran = true;
        replies[pending[k]] = std::move(got[k]);
      }
      if (wait && ran)
        check_replicas(replicas);
      return later;
    });
  }

  static constexpr bool writes(Script script) noexcept {
    return script == s_append || script == s_mark || script == s_mark_all;
  }

  // Runs `commands` pipelined, as one MULTI ... EXEC when `transaction` and there are two or
  // more, followed by WAIT when `wait` (its reply into `replicas`); returns the commands'
  // replies. A transaction Redis refused answers each of its commands with the refusal, and
  // one refused by a server that is not the primary any more (READONLY or MOVED at EXEC)
  // closes the connection, so that the next attempt finds the primary.
  std::vector<Reply> run_calls(SyncConnection& c, std::vector<Command>& commands, bool transaction,
                               bool wait, Reply& replicas) {
    const auto count = commands.size();
    if (!transaction || count < 2)
      return run_then_wait(c, commands, wait, replicas);
    commands.insert(commands.begin(), Command{"MULTI"});
    commands.push_back({"EXEC"});
    auto replies = run_then_wait(c, commands, wait, replicas);
    commands.pop_back();
    commands.erase(commands.begin());
    auto answers = transaction_answers(std::move(replies), count);
    if (says_wrong_server(answers.front()))
      c.close();
    return answers;
  }

  // The commands' own replies from those of MULTI, the `count` queued commands and EXEC:
  // EXEC's when it ran them, else (nothing ran) the refusal, `count` times: the first error
  // among MULTI's and the queued ones' replies, or the reason EXEC's own error gives
  // ("EXECABORT Transaction discarded because of: BUSY ...").
  static std::vector<Reply> transaction_answers(std::vector<Reply> replies, std::size_t count) {
    auto& exec = replies.back();
    if (exec.is_array() && exec.elements.size() == count)
      return std::move(exec.elements);
    const auto queued_error = std::find_if(replies.begin(), replies.end() - 1,
                                           [](const Reply& r) { return r.is_error(); });
    Reply refusal = queued_error != replies.end() - 1 ? std::move(*queued_error) : std::move(exec);
    constexpr std::string_view because = "EXECABORT Transaction discarded because of: ";
    if (refusal.str.compare(0, because.size(), because) == 0)
      refusal.str.erase(0, because.size());
    if (!refusal.is_error()) {
      refusal.type = Reply::Type::error;
      refusal.str = "ERR unexpected reply to EXEC";
    }
    return std::vector<Reply>(count, refusal);
  }

  // Runs `commands` pipelined, followed by WAIT when `wait` (its reply into `replicas`), and
  // returns the commands' replies.
  std::vector<Reply> run_then_wait(SyncConnection& c, std::vector<Command>& commands, bool wait,
                                   Reply& replicas) {
    if (!wait)
      return c.run(commands);
    commands.push_back({"WAIT", std::to_string(options_.wait_replicas),
                        std::to_string(options_.replica_timeout.count())});
    auto replies = c.run(commands);
    commands.pop_back();
    replicas = std::move(replies.back());
    replies.pop_back();
    return replies;
  }

  void check_replicas(const Reply& replicas) const {
    if (replicas.is_error())
      throw RedisError("redis store: WAIT: " + replicas.str);
    const auto acknowledged = replicas.as_integer();
    if (acknowledged < static_cast<long long>(options_.wait_replicas))
      throw RedisError(
          "redis store: the write reached " + std::to_string(acknowledged) + " of the " +
          std::to_string(options_.wait_replicas) + " replicas asked for within " +
          std::to_string(options_.replica_timeout.count()) + " ms (WAIT); the primary has it");
  }

  // The script's SHA1, loaded into Redis on first use; nullopt (the answer's text in
  // `refusal`) when the server says to try again later.
  std::optional<std::string> script_sha(SyncConnection& c, Script script, std::string& refusal) {
    {
      std::lock_guard lock(sha_mutex_);
      if (!shas_[script].empty())
        return shas_[script];
    }
    auto loaded = c.run(Command{"SCRIPT", "LOAD", sources_[script]});
    if (loaded.is_error() && says_try_again(loaded)) {
      refusal = loaded.str;
      return std::nullopt;
    }
    if (loaded.is_error())
      throw RedisError("redis store: " + loaded.str);
    std::lock_guard lock(sha_mutex_);
    shas_[script] = loaded.str;
    return loaded.str;
  }

  std::string seed() const {
    return options_.seed_from_clock ? std::to_string(sequence_floor_now()) : "0";
  }

  Notification append(Notification draft) {
    auto call = append_call(draft);
    take_id(draft, eval(s_append, std::move(call)));
    return draft;
  }

  // The appends pipelined on one connection: one round trip. With publish_appends Redis
  // runs the scripts in this order, so the ids and the publishes follow it.
  std::vector<Notification> append_all(std::vector<Notification> drafts) {
    if (drafts.empty())
      return drafts;
    std::vector<Call> calls;
    calls.reserve(drafts.size());
    for (auto& draft : drafts)
      calls.push_back(append_call(draft));
    const auto replies = eval_all(s_append, calls);
    for (std::size_t i = 0; i < drafts.size(); ++i)
      take_id(drafts[i], replies[i]);
    return drafts;
  }

  // Readies `draft` to be stored (time, no id, no read state) and makes its script call.
  Call append_call(Notification& draft) {
    if (!draft.broadcast && draft.user_id.empty())
      throw std::invalid_argument("RedisStore: a notification needs a user or broadcast");
    const auto now = std::chrono::system_clock::now();
    draft.id.clear();
    draft.read_at.clear();
    draft.created_at = format_timestamp(now);
    if (draft.broadcast)
      draft.user_id.clear();
    // Stored with "data":null when the draft has none (it comes back as it went in);
    // published with "data":{} as the hub's own events have it.
    nlohmann::json j = draft;
    j.erase("id");
    std::string published;
    if (draft.data.is_null()) {
      if (options_.publish_appends)
        published = j.dump();
      j["data"] = nullptr;
    }
    std::string escaped = draft.broadcast ? std::string() : redis_escape(draft.user_id);
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::string cutoff = "0";
    if (options_.max_age.count() > 0)
      cutoff = std::to_string(
          now_ms - std::chrono::duration_cast<std::chrono::milliseconds>(options_.max_age).count());
    std::string publish = publish_command(), channel, header;
    if (!publish.empty()) {
      if (draft.broadcast) {
        channel = options_.redis.prefix + "broadcast";
        header = R"({"t":"notification","b":true,"i":")";
      } else {
        channel = user_channel(escaped);
        header = R"({"t":"notification","u":")" + escaped + R"(","i":")";
      }
    }
    std::vector<std::string> args{
        j.dump(),
        std::to_string(now_ms),
        std::to_string(draft.broadcast ? options_.max_broadcasts : options_.max_per_user),
        std::move(cutoff),
        seed(),
        std::move(publish),
        std::move(channel),
        std::move(header),
        std::move(published),
        draft.idempotency_key,
        std::to_string(options_.idempotency_window.count()),
        draft.idempotency_key.empty() ? std::string() : std::to_string(content_fingerprint(draft))};
    draft.replayed = false;
    draft.replay_differs = false;
    std::string key_of_key;
    if (!draft.idempotency_key.empty())
      // E holds no '|' (escaped), so the key cannot be taken for another user's.
      key_of_key = options_.redis.prefix + "k:" + escaped + "|" + draft.idempotency_key;
    return Call{std::move(escaped), std::move(args), std::move(key_of_key)};
  }

  // The script's answer: the new id, or {"<id> <ms> <fingerprint>"} of the first publish of
  // the key.
  static void take_id(Notification& draft, const Reply& reply) {
    if (reply.is_array() && reply.elements.size() == 1) {
      const auto kept = reply.elements[0].text();
      const auto first = kept.find(' ');
      const auto second = first == std::string::npos ? first : kept.find(' ', first + 1);
      const std::string_view text(kept);
      const auto id = parse_sequence(text.substr(0, first));
      const auto ms = second == std::string::npos
                          ? std::nullopt
                          : parse_sequence(text.substr(first + 1, second - first - 1));
      const auto fingerprint =
          second == std::string::npos ? std::nullopt : parse_sequence(text.substr(second + 1));
      if (!id || !ms || !fingerprint)
        throw RedisError("redis store: append returned an unreadable kept key: " + kept);
      draft.id = std::to_string(*id);
      draft.created_at = format_timestamp(std::chrono::system_clock::time_point(
          std::chrono::milliseconds(static_cast<std::int64_t>(*ms))));
      draft.replayed = true;
      draft.replay_differs = *fingerprint != content_fingerprint(draft);
      return;
    }
    draft.id = reply.text();
    if (!parse_sequence(draft.id))
      throw RedisError("redis store: append returned no id");
  }

  std::uint64_t head() {
    return pool_.with([&](SyncConnection& c) {
      auto reply = c.run(Command{"GET", options_.redis.prefix + "seq"});
      if (reply.is_error())
        throw RedisError("redis store: " + reply.str);
      return to_u64(reply);
    });
  }

  Snapshot snapshot(std::string_view user, std::size_t limit) {
    return to_snapshot(eval(s_snapshot, redis_escape(user), {limit_arg(limit)}));
  }

  std::vector<Snapshot> snapshot_many(const std::vector<std::string>& users, std::size_t limit) {
    return eval_each(
        s_snapshot, users,
        [&](const std::string& user) {
          return Call{redis_escape(user), {limit_arg(limit)}, {}};
        },
        [](const Reply& reply, const std::string&) { return to_snapshot(reply); });
  }

  static Snapshot to_snapshot(const Reply& reply) {
    Snapshot s;
    s.cursor = to_u64(element(reply, 0));
    s.unread_count = to_count(element(reply, 1));
    s.unread = to_notifications(element(reply, 2));
    return s;
  }

  std::optional<Resume> resume(std::string_view user, std::uint64_t cursor, std::size_t limit,
                               std::size_t max_missed) {
    return to_resume(eval(s_resume, redis_escape(user), resume_args(cursor, limit, max_missed)),
                     cursor);
  }

  std::vector<std::optional<Resume>> resume_many(const std::vector<ResumeQuery>& queries,
                                                 std::size_t limit, std::size_t max_missed) {
    return eval_each(
        s_resume, queries,
        [&](const ResumeQuery& q) {
          return Call{redis_escape(q.user), resume_args(q.cursor, limit, max_missed), {}};
        },
        [](const Reply& reply, const ResumeQuery& q) { return to_resume(reply, q.cursor); });
  }

  static std::vector<std::string> resume_args(std::uint64_t cursor, std::size_t limit,
                                              std::size_t max_missed) {
    return {std::to_string(cursor), limit_arg(limit), limit_arg(max_missed)};
  }

  static std::optional<Resume> to_resume(const Reply& reply, std::uint64_t cursor) {
    if (element(reply, 0).as_integer() == 0)
      return std::nullopt;
    Resume r;
    r.head = to_u64(element(reply, 1));
    r.snapshot.cursor = cursor;
    r.snapshot.unread_count = to_count(element(reply, 2));
    r.snapshot.unread = to_notifications(element(reply, 3));
    r.missed = to_notifications(element(reply, 4));
    r.last_read = to_u64(element(reply, 5));
    return r;
  }

  std::vector<Notification> list(std::string_view user, bool unread_only, std::size_t limit) {
    return to_notifications(
        eval(s_list, redis_escape(user), {unread_only ? "1" : "0", limit_arg(limit)}));
  }

  std::uint64_t unread_count(std::string_view user) {
    return to_count(eval(s_unread, redis_escape(user), {}));
  }

  ReadResult mark_read(std::string_view user, std::string_view id) {
    return mark_many({MarkQuery{std::string(user), std::string(id)}}).front();
  }

  ReadResult mark_all_read(std::string_view user) {
    return mark_many({MarkQuery{std::string(user), std::nullopt}}).front();
  }

  // Two or more go as one transaction (eval_all): all made, in order, or none.
  std::vector<ReadResult> mark_many(const std::vector<MarkQuery>& marks) {
    std::vector<ReadResult> results;
    if (marks.empty())
      return results;
    std::vector<Script> scripts;
    std::vector<Call> calls;
    std::vector<std::string> canonical;  // mark_read's id as Redis holds it, "" for none
    scripts.reserve(marks.size());
    calls.reserve(marks.size());
    canonical.reserve(marks.size());
    const auto at = now_timestamp();
    for (const auto& m : marks) {
      auto escaped = redis_escape(m.user);
      auto channel = user_channel(escaped);
      if (m.id) {
        const auto seq = parse_sequence(*m.id);
        canonical.push_back(seq ? std::to_string(*seq) : std::string());
        // An id that is no number cannot name anything: read the position and count only.
        scripts.push_back(s_mark);
        calls.push_back(Call{std::move(escaped),
                             {canonical.back().empty() ? "x" : canonical.back(), at, seed(),
                              publish_command(), std::move(channel)},
                             {}});
      } else {
        canonical.emplace_back();
        scripts.push_back(s_mark_all);
        calls.push_back(
            Call{std::move(escaped), {at, seed(), publish_command(), std::move(channel)}, {}});
      }
    }
    const auto replies = eval_all(scripts, calls);
    results.reserve(marks.size());
    for (std::size_t i = 0; i < marks.size(); ++i) {
      const auto& reply = replies[i];
      auto& result = results.emplace_back();
      if (scripts[i] == s_mark) {
        if (element(reply, 0).as_integer() == 1)
          result.ids.push_back(canonical[i]);
      } else {
        const auto& ids = element(reply, 0);
        if (!ids.is_array())
          throw RedisError("redis store: unexpected reply");
        for (const auto& id : ids.elements)
          result.ids.push_back(id.str);
      }
      result.seq = to_u64(element(reply, 1));
      result.unread_count = to_count(element(reply, 2));
    }
    return results;
  }

  // How the scripts publish (publish_appends): the command, '' for none.
  std::string publish_command() const {
    if (!options_.publish_appends)
      return {};
    return options_.sharded ? "SPUBLISH" : "PUBLISH";
  }
  std::string user_channel(const std::string& escaped) const {
    return options_.redis.prefix + "u:" + escaped;
  }

  static std::string now_timestamp() { return format_timestamp(std::chrono::system_clock::now()); }

  RedisStoreOptions options_;
  Pool pool_;
  std::array<std::string, s_count> sources_;
  std::mutex sha_mutex_;
  std::array<std::string, s_count> shas_;
};

RedisStore::RedisStore(RedisStoreOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
RedisStore::~RedisStore() = default;

Notification RedisStore::append(Notification draft) {
  return impl_->append(std::move(draft));
}
std::vector<Notification> RedisStore::append_all(std::vector<Notification> drafts) {
  return impl_->append_all(std::move(drafts));
}
std::uint64_t RedisStore::head() {
  return impl_->head();
}
Snapshot RedisStore::snapshot(std::string_view user, std::size_t limit) {
  return impl_->snapshot(user, limit);
}
std::vector<Snapshot> RedisStore::snapshot_many(const std::vector<std::string>& users,
                                                std::size_t limit) {
  return impl_->snapshot_many(users, limit);
}
std::optional<Resume> RedisStore::resume(std::string_view user, std::uint64_t cursor,
                                         std::size_t limit, std::size_t max_missed) {
  return impl_->resume(user, cursor, limit, max_missed);
}
std::vector<std::optional<Resume>> RedisStore::resume_many(const std::vector<ResumeQuery>& queries,
                                                           std::size_t limit,
                                                           std::size_t max_missed) {
  return impl_->resume_many(queries, limit, max_missed);
}
std::vector<Notification> RedisStore::list(std::string_view user, bool unread_only,
                                           std::size_t limit) {
  return impl_->list(user, unread_only, limit);
}
std::uint64_t RedisStore::unread_count(std::string_view user) {
  return impl_->unread_count(user);
}
ReadResult RedisStore::mark_read(std::string_view user, std::string_view id) {
  return impl_->mark_read(user, id);
}
ReadResult RedisStore::mark_all_read(std::string_view user) {
  return impl_->mark_all_read(user);
}
std::vector<ReadResult> RedisStore::mark_many(const std::vector<MarkQuery>& marks) {
  return impl_->mark_many(marks);
}
bool RedisStore::publishes_appends() const noexcept {
  return impl_->options_.publish_appends;
}
const RedisStoreOptions& RedisStore::options() const noexcept {
  return impl_->options_;
}

}  // namespace notify
