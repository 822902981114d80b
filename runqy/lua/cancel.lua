-- Cancel a task that has not started: take it out of whichever list holds it and
-- archive it with error_msg "canceled" (docs/product.md §5); a unique task releases its lock.
--
-- KEYS[1] -> asynq:{Q}:t:<id>
-- KEYS[2] -> asynq:{Q}:pending
-- KEYS[3] -> runqy:{Q}:held
-- KEYS[4] -> asynq:{Q}:scheduled
-- KEYS[5] -> asynq:{Q}:retry
-- KEYS[6] -> asynq:{Q}:archived
-- KEYS[7] -> asynq:{Q}:active
-- ARGV[1] -> id
-- ARGV[2] -> now, Unix seconds
--
-- Returns {1, ttl_archived} canceled and archived (an orphan, whose hash says active while it
--                            is in no list, is archived too)
--         {2}    the task is running (in the active list), or a worker has just taken it from pending
--         {-1}   no such task
--         {-2, state}  the task has already finished (completed or archived)

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {-1}
end
if state == 'completed' or state == 'archived' then
  return {-2, state}
end
if redis.call('LPOS', KEYS[7], ARGV[1]) then
  return {2}
end
local removed = redis.call('LREM', KEYS[2], 0, ARGV[1]) + redis.call('LREM', KEYS[3], 0, ARGV[1])
  + redis.call('ZREM', KEYS[4], ARGV[1]) + redis.call('ZREM', KEYS[5], ARGV[1])
if removed == 0 and state == 'pending' then
  -- between a worker's BRPOP and its activation the id is in no list: it is starting
  return {2}
end
-- a unique task gives its lock up, if it still holds it (the lock key is read from the hash:
-- it is in this queue's hash slot)
local lock = redis.call('HGET', KEYS[1], 'unique_key')
if lock and redis.call('GET', lock) == ARGV[1] then
  redis.call('DEL', lock)
end
local ttl = tonumber(redis.call('HGET', KEYS[1], 'ttl_archived') or '0') or 0
local purge_at = tonumber(ARGV[2]) + (ttl > 0 and ttl or 3153600000)
redis.call('ZADD', KEYS[6], purge_at, ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'archived', 'error_msg', 'canceled', 'last_failed_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'pending_since')
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return {1, ttl}
