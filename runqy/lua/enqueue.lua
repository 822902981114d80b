-- Enqueue one or more tasks onto one sub-queue, atomically (worker-protocol §3.1).
-- Each task hash is complete before its id is pushed; nothing is written when
-- any check fails. Defaults come from the queue's config hash, so every server
-- process sees a config change at once.
--
-- KEYS[1]   -> runqy:{Q}:config    enqueue defaults; absent means the queue is unknown
-- KEYS[2]   -> asynq:{Q}:pending
-- KEYS[3]   -> runqy:{Q}:held      takes the ids instead of pending while the queue is paused
-- KEYS[4]   -> asynq:{Q}:paused
-- KEYS[4+i] -> asynq:{Q}:t:<id_i>  the hash of task i
-- ARGV[1]   -> now, Unix seconds
-- ARGV[2]   -> max_retry for every task; "" = the queue's default
-- ARGV[3i], ARGV[3i+1], ARGV[3i+2] -> id_i, msg fields 1-4 of task i, timeout of task i ("" = default)
--
-- Returns {held, max_retry, default_timeout} where held is 1 when the queue is paused, or
--   {-1}     the queue has no config
--   {-2, i}  task i already exists

local config = redis.call('HMGET', KEYS[1], 'max_retry', 'timeout', 'result_ttl', 'failed_ttl', 'pending_timeout')
if not config[1] then
  return {-1}
end
for k = 5, #KEYS do
  if redis.call('EXISTS', KEYS[k]) == 1 then
    return {-2, k - 4}
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

for k = 5, #KEYS do
  local a = 3 * (k - 4)
  local timeout = tonumber(ARGV[a + 2]) or default_timeout
  redis.call('HSET', KEYS[k],
    'msg', ARGV[a + 1] .. retry_field .. int_field(0x40, timeout) .. retention_field,
    'state', 'pending',
    'pending_since', now,
    'enqueued_at', now,
    'ttl_completed', result_ttl,
    'ttl_archived', failed_ttl,
    'pending_timeout', pending_timeout,
    'active_timeout', timeout)
  redis.call('LPUSH', list, ARGV[a])
end
return {held, max_retry, default_timeout}
