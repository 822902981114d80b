-- Run again, now, up to ARGV[3] tasks of one state of a sub-queue (docs/product.md §5), the
-- oldest first: each as run_task.lua does. The caller calls again until fewer come back, so
-- Redis is never blocked for long, and renews the reverse keys of the ids returned. The task
-- hashes are read from their ids (ARGV[2] .. id), all in this queue's hash slot.
--
-- KEYS[1] -> asynq:{Q}:scheduled, asynq:{Q}:retry or asynq:{Q}:archived
-- KEYS[2] -> asynq:{Q}:pending
-- KEYS[3] -> runqy:{Q}:held
-- KEYS[4] -> asynq:{Q}:paused
-- ARGV[1] -> now, Unix seconds
-- ARGV[2] -> asynq:{Q}:t: (task key prefix)
-- ARGV[3] -> the most tasks moved by this call
--
-- Returns the ids taken out of the set; those whose hash had gone were dropped, not pushed

local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #ids == 0 then
  return ids
end
redis.call('ZREM', KEYS[1], unpack(ids))
local list = KEYS[2]
if redis.call('EXISTS', KEYS[4]) == 1 then
  list = KEYS[3]
end
for _, id in ipairs(ids) do
  local hash = ARGV[2] .. id
  if redis.call('EXISTS', hash) == 1 then
    redis.call('PERSIST', hash)
    redis.call('HSET', hash, 'state', 'pending', 'pending_since', ARGV[1])
    redis.call('LPUSH', list, id)
  end
end
return ids
