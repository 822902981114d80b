-- Run a scheduled, retry or archived task again now (docs/product.md §5): out of its set, its
-- hash saying state pending (with pending_since; no expiry, which an archived task had), its id
-- pushed onto pending, or held while the queue is paused. Its id, payload, result TTLs and
-- last error stay as they are. The caller renews the reverse key, which lives in another slot.
--
-- KEYS[1] -> asynq:{Q}:t:<id>
-- KEYS[2] -> asynq:{Q}:scheduled
-- KEYS[3] -> asynq:{Q}:retry
-- KEYS[4] -> asynq:{Q}:archived
-- KEYS[5] -> asynq:{Q}:pending
-- KEYS[6] -> runqy:{Q}:held
-- KEYS[7] -> asynq:{Q}:paused
-- ARGV[1] -> id
-- ARGV[2] -> now, Unix seconds
--
-- Returns {1, state}  moved, from state
--         {-1}        no such task in this queue
--         {-2, state} the task is in another state (or not in its state's set: a worker has it)

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {-1}
end
local sets = {scheduled = KEYS[2], retry = KEYS[3], archived = KEYS[4]}
local set = sets[state]
if not set or redis.call('ZREM', set, ARGV[1]) == 0 then
  return {-2, state}
end
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'pending_since', ARGV[2])
if redis.call('EXISTS', KEYS[7]) == 1 then
  redis.call('LPUSH', KEYS[6], ARGV[1])
else
  redis.call('LPUSH', KEYS[5], ARGV[1])
end
return {1, state}
