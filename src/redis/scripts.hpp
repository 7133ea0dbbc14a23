// The Lua scripts of RedisStore. Each one is the prelude followed by its body. Every script
// gets ARGV[1] = the prefix P and ARGV[2] = the escaped user E ("" for a broadcast), and its
// keys declared in KEYS, in the order of add_script_keys() (redis_store.cpp; see redis_store.hpp
// for the schema): a cluster then checks them all before the script runs, so that a script
// in a slot being migrated is refused whole (TRYAGAIN, ASK) rather than failing at a key
// that already left, with its first writes done. (The age trim's keys of other users cannot
// be declared: it derives them from P, and skips what the node refuses.) Numbers that can exceed
// 2^53 never go through Lua numbers on their way out: ids are formatted with %d from the
// INCR result (exact below 2^53, i.e. for ~285 years of microsecond-seeded ids).
#pragma once

namespace notify::redis_detail::scripts {

inline constexpr const char* prelude = R"lua(
local P = ARGV[1]
local E = ARGV[2]
local K_SEQ, K_BASE, K_NOTES, K_TIME = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_BCAST, K_TRIM = KEYS[5], KEYS[6]
local K_HIST, K_UNREAD, K_READ, K_BREAD = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_LASTREAD = KEYS[11]

local function num(v)
  if v then return tonumber(v) end
  return 0
end
local function fmt(n) return string.format('%d', n) end
local function btrim() return num(redis.call('HGET', K_TRIM, '*')) end
local function utrim() return num(redis.call('HGET', K_TRIM, E)) end

-- With a seed (the caller's clock in microseconds, sequence_floor_now()) the sequence never
-- falls behind it: a Redis that lost its last writes (a failover to a replica that had not
-- received them, a restart that lost the end of its log) must not give their ids to other
-- notifications, which the clients that saw the lost ones would drop as already seen. A
-- sequence that did not exist (INCR gave 1) starts at the seed, and cursors below it are
-- refused (K_BASE).
local function next_seq(seed)
  local id = redis.call('INCR', K_SEQ)
  if seed == '0' then return id end
  local floor = tonumber(seed)
  if id >= floor then return id end
  if id == 1 then redis.call('SET', K_BASE, seed) end
  redis.call('SET', K_SEQ, seed)
  return floor
end

-- The position of a read change of the user's, kept as the user's latest (Resume::last_read);
-- the current head when nothing changed.
local function read_seq(changed, seed)
  if not changed then return redis.call('GET', K_SEQ) or '0' end
  local seq = fmt(next_seq(seed))
  redis.call('SET', K_LASTREAD, seq)
  return seq
end

local function unread_count()
  return redis.call('ZCARD', K_UNREAD) + redis.call('ZCARD', K_BCAST)
      - redis.call('ZCOUNT', K_BREAD, '(' .. fmt(btrim()), '+inf')
end

-- {{seq, id}, ...} from a WITHSCORES reply
local function pairs_of(reply)
  local out = {}
  for i = 1, #reply, 2 do out[#out + 1] = {tonumber(reply[i + 1]), reply[i]} end
  return out
end

local function merge(a, b, limit, newest_first)
  local out, i, j = {}, 1, 1
  while #out < limit and (i <= #a or j <= #b) do
    local take_a
    if j > #b then take_a = true
    elseif i > #a then take_a = false
    elseif newest_first then take_a = a[i][1] > b[j][1]
    else take_a = a[i][1] < b[j][1] end
    if take_a then out[#out + 1] = a[i]; i = i + 1 else out[#out + 1] = b[j]; j = j + 1 end
  end
  return out
end

-- The user's unread notifications (own and broadcasts) with seq <= upto, newest first.
local function unread_desc(upto, limit)
  if limit <= 0 then return {} end
  local own = pairs_of(redis.call('ZREVRANGEBYSCORE', K_UNREAD, upto, '-inf', 'WITHSCORES',
                                  'LIMIT', 0, limit))
  local b, offset, page = {}, 0, 256
  while #b < limit do
    local chunk = redis.call('ZREVRANGEBYSCORE', K_BCAST, upto, '-inf', 'WITHSCORES', 'LIMIT',
                             offset, page)
    for i = 1, #chunk, 2 do
      if #b >= limit then break end
      if not redis.call('ZSCORE', K_BREAD, chunk[i]) then
        b[#b + 1] = {tonumber(chunk[i + 1]), chunk[i]}
      end
    end
    if #chunk < page * 2 then break end
    offset = offset + page
  end
  return merge(own, b, limit, true)
end

-- The notification:read event of a change, on the user's bus channel, in the format of
-- notify::encode_bus_message (the same data as the hub's own read events).
local function publish_read(command, channel, seq, quoted_ids, count)
  if command == '' then return end
  redis.call(command, channel, '{"t":"notification:read","u":"' .. E .. '","s":"' .. seq ..
             '"}\n{"ids":[' .. quoted_ids .. '],"unreadCount":' .. string.format('%d', count) .. '}')
end

-- {json, readAt, json, readAt, ...}; readAt is '' unless with_read finds one.
local function items(list, with_read)
  local out = {}
  for _, e in ipairs(list) do
    local json = redis.call('HGET', K_NOTES, e[2])
    if json then
      out[#out + 1] = json
      local read_at = with_read and redis.call('HGET', K_READ, e[2]) or false
      out[#out + 1] = read_at or ''
    end
  end
  return out
end
)lua";

// ARGV: 3 the notification's JSON without "id" (an object), 4 createdAt in ms,
// 5 the history cap, 6 the age cutoff in ms ('0': none), 7 the sequence seed ('0': none),
// 8 'PUBLISH' | 'SPUBLISH' | '', 9 the channel, 10 the bus header up to the id,
// 11 the JSON to publish when it differs from 3 ('' otherwise), 12 the idempotency key
// ('' for none; then KEYS[12] is its key, P k:E|K), 13 how long to keep it in ms, 14 the
// draft's content fingerprint.
// Returns the id, or {'<id> <createdAt in ms> <fingerprint>'} of the first publish of a key
// kept already (nothing stored, nothing published).
inline constexpr const char* append = R"lua(
local broadcast = (E == '')
local K_KEY = nil
if ARGV[12] ~= '' then
  K_KEY = KEYS[12]
  local kept = redis.call('GET', K_KEY)
  if kept then return {kept} end
end
local id = fmt(next_seq(ARGV[7]))
if K_KEY then redis.call('SET', K_KEY, id .. ' ' .. ARGV[4] .. ' ' .. ARGV[14], 'PX', ARGV[13]) end
local data = '{"id":"' .. id .. '",' .. string.sub(ARGV[3], 2)
redis.call('HSET', K_NOTES, id, data)
redis.call('ZADD', K_TIME, ARGV[4], id .. '|' .. E)
local hist = K_HIST
if broadcast then hist = K_BCAST else redis.call('ZADD', K_UNREAD, id, id) end
redis.call('ZADD', hist, id, id)

-- Drops one notification of `owner` ('' for a broadcast); false when it could not. Another
-- user's keys are not declared (the age trim finds the owner as it runs): in a cluster
-- migrating the slot one may have left already, and Redis refuses it after this script's
-- writes, failing a publish that was stored. So those keys go first, through pcall, and a
-- refusal leaves the notification whole for a later trim.
local function drop(declared, command, key, oid)
  if declared then
    redis.call(command, key, oid)
    return true
  end
  local r = redis.pcall(command, key, oid)
  return not (type(r) == 'table' and r.err)
end

local function forget(oid, owner)
  local field = '*'
  if owner == '' then
    redis.call('ZREM', K_BCAST, oid)
  else
    field = owner
    local u, declared = P .. 'u:' .. owner, owner == E
    if not (drop(declared, 'ZREM', u .. ':h', oid) and drop(declared, 'ZREM', u .. ':unread', oid)
            and drop(declared, 'HDEL', u .. ':read', oid)) then
      return false
    end
  end
  redis.call('HDEL', K_NOTES, oid)
  redis.call('ZREM', K_TIME, oid .. '|' .. owner)
  if tonumber(oid) > num(redis.call('HGET', K_TRIM, field)) then
    redis.call('HSET', K_TRIM, field, oid)
  end
  return true
end

local n, cap = redis.call('ZCARD', hist), tonumber(ARGV[5])
if n > cap then
  for _, oid in ipairs(redis.call('ZRANGE', hist, 0, n - cap - 1)) do forget(oid, E) end
end
if ARGV[6] ~= '0' then
  local old = redis.call('ZRANGEBYSCORE', K_TIME, '-inf', '(' .. ARGV[6], 'LIMIT', 0, 100)
  for _, m in ipairs(old) do
    local bar = string.find(m, '|', 1, true)
    if not bar then redis.call('ZREM', K_TIME, m)
    elseif not forget(string.sub(m, 1, bar - 1), string.sub(m, bar + 1)) then break end
  end
end
if ARGV[8] ~= '' then
  local pub = data
  if ARGV[11] ~= '' then pub = '{"id":"' .. id .. '",' .. string.sub(ARGV[11], 2) end
  redis.call(ARGV[8], ARGV[9], ARGV[10] .. id .. '","s":"' .. id .. '"}\n' .. pub)
end
return id
)lua";

// ARGV: 3 limit. Returns {head, unread count, items}.
inline constexpr const char* snapshot = R"lua(
local limit = tonumber(ARGV[3])
return {redis.call('GET', K_SEQ) or '0', unread_count(), items(unread_desc('+inf', limit), false)}
)lua";

// ARGV: 3 cursor, 4 limit, 5 max missed. Returns {0} (refused) or
// {1, head, unread count at the cursor, snapshot items, missed items, last read change}.
inline constexpr const char* resume = R"lua(
local cursor = tonumber(ARGV[3])
local head = redis.call('GET', K_SEQ) or '0'
if cursor > tonumber(head) or cursor < utrim() or cursor < btrim() then return {0} end
if cursor ~= 0 and cursor < num(redis.call('GET', K_BASE)) then return {0} end
local after = '(' .. ARGV[3]
local n = redis.call('ZCOUNT', K_HIST, after, '+inf') + redis.call('ZCOUNT', K_BCAST, after, '+inf')
if n > tonumber(ARGV[5]) then return {0} end
local missed = merge(pairs_of(redis.call('ZRANGEBYSCORE', K_HIST, after, '+inf', 'WITHSCORES')),
                     pairs_of(redis.call('ZRANGEBYSCORE', K_BCAST, after, '+inf', 'WITHSCORES')),
                     n, false)
local missed_items = items(missed, true)
local unread_missed = 0
for i = 2, #missed_items, 2 do
  if missed_items[i] == '' then unread_missed = unread_missed + 1 end
end
return {1, head, unread_count() - unread_missed,
        items(unread_desc(ARGV[3], tonumber(ARGV[4])), false), missed_items,
        redis.call('GET', K_LASTREAD) or '0'}
)lua";

// ARGV: 3 '1' for unread only, 4 limit. Returns items, newest first.
inline constexpr const char* list = R"lua(
local limit = tonumber(ARGV[4])
if limit <= 0 then return {} end
if ARGV[3] == '1' then return items(unread_desc('+inf', limit), false) end
local own = pairs_of(redis.call('ZREVRANGE', K_HIST, 0, limit - 1, 'WITHSCORES'))
local b = pairs_of(redis.call('ZREVRANGE', K_BCAST, 0, limit - 1, 'WITHSCORES'))
return items(merge(own, b, limit, true), true)
)lua";

inline constexpr const char* unread = R"lua(
return unread_count()
)lua";

// ARGV: 3 the id (canonical decimal), 4 readAt, 5 the sequence seed,
// 6 'PUBLISH' | 'SPUBLISH' | '' (publish the notification:read event), 7 the channel.
// Returns {changed (0/1), seq, unread count}.
inline constexpr const char* mark_read = R"lua(
local id = ARGV[3]
local changed = false
if redis.call('ZSCORE', K_HIST, id) then
  if redis.call('ZREM', K_UNREAD, id) == 1 then
    redis.call('HSET', K_READ, id, ARGV[4])
    changed = true
  end
else
  local s = redis.call('ZSCORE', K_BCAST, id)
  if s and redis.call('ZADD', K_BREAD, 'NX', s, id) == 1 then
    redis.call('HSET', K_READ, id, ARGV[4])
    changed = true
  end
end
local seq = read_seq(changed, ARGV[5])
local c, count = 0, unread_count()
if changed then
  c = 1
  publish_read(ARGV[6], ARGV[7], seq, '"' .. id .. '"', count)
end
return {c, seq, count}
)lua";

// ARGV: 3 readAt, 4 the sequence seed, 5 publish command, 6 channel (as mark_read).
// Returns {ids, seq, unread count}.
inline constexpr const char* mark_all_read = R"lua(
local ids = redis.call('ZRANGE', K_UNREAD, 0, -1)
for _, id in ipairs(ids) do redis.call('HSET', K_READ, id, ARGV[3]) end
redis.call('DEL', K_UNREAD)
local bt = fmt(btrim())
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_BREAD, '-inf', bt)) do
  redis.call('HDEL', K_READ, id)
end
redis.call('ZREMRANGEBYSCORE', K_BREAD, '-inf', bt)
local bs = redis.call('ZRANGE', K_BCAST, 0, -1, 'WITHSCORES')
for i = 1, #bs, 2 do
  if redis.call('ZADD', K_BREAD, 'NX', bs[i + 1], bs[i]) == 1 then
    redis.call('HSET', K_READ, bs[i], ARGV[3])
    ids[#ids + 1] = bs[i]
  end
end
local seq = read_seq(#ids > 0, ARGV[4])
local count = unread_count()
if #ids > 0 then publish_read(ARGV[5], ARGV[6], seq, '"' .. table.concat(ids, '","') .. '"', count) end
return {ids, seq, count}
)lua";

}  // namespace notify::redis_detail::scripts
