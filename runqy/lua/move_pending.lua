-- Pause or unpause one sub-queue (docs/product.md §5). runqy-worker never reads asynq's
-- paused flag, so pausing moves the pending ids to the held list, which it never
-- polls; unpausing moves them back. Both lists keep the asynq orientation (newest at
-- the head, oldest at the tail), so the ids come back in their original order.
-- Repeating either is harmless.
--
-- KEYS[1] -> the list the ids leave: asynq:{Q}:pending to pause, runqy:{Q}:held to unpause
-- KEYS[2] -> the list they join: runqy:{Q}:held to pause, asynq:{Q}:pending to unpause
-- KEYS[3] -> asynq:{Q}:paused
-- ARGV[1] -> the paused flag's value (now, Unix seconds, as asynq writes it) to pause; "" to unpause
--
-- Returns the number of ids moved.

local moved = redis.call('LLEN', KEYS[1])
if moved > 0 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('RENAME', KEYS[1], KEYS[2])
  else
    -- the moving ids are older than those already in the list they join: they go to its
    -- tail, where the worker (BRPOP) takes from
    local ids = redis.call('LRANGE', KEYS[1], 0, -1)
    for i = 1, #ids, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
    end
    redis.call('DEL', KEYS[1])
  end
end
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[3], ARGV[1])
else
  redis.call('DEL', KEYS[3])
end
return moved
