-- Enqueue one or more tasks onto one sub-queue, atomically (docs/worker-protocol.md §3.1), in one
-- call: the reverse keys, the unique locks, every task hash, the pushes (or, for a task to run
-- later, its place in the scheduled set) and the queue's membership of asynq:queues, or nothing
-- when any check fails. Each task hash is complete before its id is pushed. Defaults come from
-- the queue's config hash, so every server process sees a config change at once. The reverse
-- keys and asynq:queues are outside the queue's hash slot (runqy-worker's multi-queue BRPOP
-- rules out Redis Cluster anyway); every key is declared in KEYS.
--
-- KEYS[1]        -> runqy:{Q}:config    enqueue defaults; absent means the queue is unknown
-- KEYS[2]        -> asynq:{Q}:pending
-- KEYS[3]        -> runqy:{Q}:held      takes the ids instead of pending while the queue is paused
-- KEYS[4]        -> asynq:{Q}:paused
-- KEYS[5]        -> asynq:queues
-- KEYS[6]        -> asynq:{Q}:scheduled
-- KEYS[6+i]      -> asynq:{Q}:t:<id_i>  the hash of task i, for i = 1..n
-- KEYS[6+n+i]    -> asynq:t:<id_i>      the reverse key of task i
-- KEYS[6+2n+i]   -> asynq:{Q}:unique:<Q>:<md5 of payload i>, the unique lock of task i; only
--                   when ARGV[7] is set
-- KEYS[#KEYS]    -> runqy:idempotency:<role>:<sha256 of the key>, the record of the request that
--                   carried an Idempotency-Key; only when ARGV[8] is set
-- ARGV[1]        -> now, Unix seconds
-- ARGV[2]        -> max_retry for every task; "" = the queue's default
-- ARGV[3]        -> Q, the queue name the reverse keys hold
-- ARGV[4]        -> lifetime of a reverse key, seconds
-- ARGV[5]        -> the reverse key's field that holds Q ('queue')
-- ARGV[6]        -> when the tasks are to run, Unix seconds, later than now; "" = now
-- ARGV[7]        -> lifetime of each unique lock, seconds; "" = the tasks are not unique
-- ARGV[8]        -> the fingerprint of an idempotent request (its route and body); "" = none
-- ARGV[9]        -> lifetime of the idempotency record, seconds
-- ARGV[7+3i], ARGV[8+3i], ARGV[9+3i] -> id_i, msg fields 1-4 of task i, timeout of task i ("" = default)
--
-- Returns {1, held, max_retry, default_timeout} where held is 1 when the queue is paused, or
--   {2, answer}   a repeat of the idempotent request: the JSON {held, max_retry,
--                 default_timeout, ids, process_at (0 = now)} of the first call, and nothing
--                 written
--   {-1}          the queue has no config
--   {-2, i}       task i already exists: its hash is in this queue, or its reverse key names
--                 another queue (a reverse key naming this queue without a hash is the claim of
--                 an enqueue whose answer was lost; retrying it writes the task)
--   {-3, i, id}   task i is a duplicate: task id holds its unique lock
--   {-4}          the idempotency key was used with another request

local idempotent = ARGV[8] ~= ''
local record = KEYS[#KEYS]
if idempotent then
  local stored = redis.call('HMGET', record, 'fingerprint', 'answer')
  if stored[1] then
    if stored[1] ~= ARGV[8] then
      return {-4}
    end
    return {2, stored[2]}
  end
end

local config = redis.call('HMGET', KEYS[1], 'max_retry', 'timeout', 'result_ttl', 'failed_ttl', 'pending_timeout')
if not config[1] then
  return {-1}
end
local queue = ARGV[3]
local unique_for = ARGV[7]
local n = (#KEYS - 6 - (idempotent and 1 or 0)) / (unique_for == '' and 2 or 3)
-- claim every reverse key and unique lock; when one task cannot be written, the claims made
-- here are taken back and nothing else has been written
local claimed = {}
local function refuse(reply)
  if #claimed > 0 then
    redis.call('DEL', unpack(claimed))
  end
  return reply
end
for i = 1, n do
  local id = ARGV[7 + 3 * i]
  local taken = redis.call('EXISTS', KEYS[6 + i]) == 1
  if not taken then
    if redis.call('HSETNX', KEYS[6 + n + i], ARGV[5], queue) == 1 then
      claimed[#claimed + 1] = KEYS[6 + n + i]
    else
      taken = redis.call('HGET', KEYS[6 + n + i], ARGV[5]) ~= queue
    end
  end
  if taken then
    return refuse({-2, i})
  end
  if unique_for ~= '' then
    local lock = KEYS[6 + 2 * n + i]
    if not redis.call('SET', lock, id, 'NX', 'EX', unique_for) then
      return refuse({-3, i, redis.call('GET', lock)})
    end
    claimed[#claimed + 1] = lock
  end
end

local function varint(n)
  local out = {}
  while n >= 128 do
    out[#out + 1] = string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  out[#out + 1] = string.char(n)
  return table.concat(out)
end

-- proto3 leaves zero values out; tags: 0x28 retry (5), 0x40 timeout (8), 0x60 retention (12)
local function int_field(tag, n)
  if n == 0 then return '' end
  return string.char(tag) .. varint(n)
end

local now = ARGV[1]
local max_retry = tonumber(ARGV[2]) or tonumber(config[1])
local default_timeout = tonumber(config[2])
local result_ttl, failed_ttl, pending_timeout = config[3], config[4], config[5]
local retry_field = int_field(0x28, max_retry)
local retention_field = int_field(0x60, tonumber(result_ttl))

local list, held = KEYS[2], 0
if redis.call('EXISTS', KEYS[4]) == 1 then
  list, held = KEYS[3], 1
end
local process_at = ARGV[6]

-- the msg fields after the payload, id and queue, by timeout: most tasks share one
local tails = {}
local function tail(timeout)
  local t = tails[timeout]
  if not t then
    t = retry_field .. int_field(0x40, timeout) .. retention_field
    tails[timeout] = t
  end
  return t
end

local reverse_ttl = ARGV[4]
local ids = {}
for i = 1, n do
  local a = 7 + 3 * i
  local timeout = tonumber(ARGV[a + 2]) or default_timeout
  local hash = KEYS[6 + i]
  redis.call('EXPIRE', KEYS[6 + n + i], reverse_ttl)
  local fields = {
    'msg', ARGV[a + 1] .. tail(timeout),
    'enqueued_at', now,
    'ttl_completed', result_ttl,
    'ttl_archived', failed_ttl,
    'pending_timeout', pending_timeout,
    'active_timeout', timeout,
    'state', process_at == '' and 'pending' or 'scheduled'}
  if process_at == '' then
    table.insert(fields, 'pending_since')
    table.insert(fields, now)
  end
  if unique_for ~= '' then
    table.insert(fields, 'unique_key')
    table.insert(fields, KEYS[6 + 2 * n + i])
  end
  redis.call('HSET', hash, unpack(fields))
  if process_at ~= '' then
    redis.call('ZADD', KEYS[6], process_at, ARGV[a])
  else
    ids[#ids + 1] = ARGV[a]
    -- every hash above is complete before its id is pushed; pushed in order, a few hundred at
    -- a time (Lua's unpack has a bounded stack)
    if #ids == 500 or i == n then
      redis.call('LPUSH', list, unpack(ids))
      ids = {}
    end
  end
end
redis.call('SADD', KEYS[5], queue)
if idempotent then
  local all = {}
  for i = 1, n do
    all[i] = ARGV[7 + 3 * i]
  end
  redis.call('HSET', record, 'fingerprint', ARGV[8], 'answer', cjson.encode({held, max_retry, default_timeout, all,
    tonumber(process_at) or 0}))
  redis.call('EXPIRE', record, ARGV[9])
end
return {1, held, max_retry, default_timeout}
