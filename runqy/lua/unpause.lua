-- Unpause one sub-queue: the held ids go back to pending, oldest still first to
-- be taken, and asynq's paused flag is removed. Unpausing twice is harmless.
--
-- KEYS[1] -> asynq:{Q}:pending
-- KEYS[2] -> runqy:{Q}:held
-- KEYS[3] -> asynq:{Q}:paused
--
-- Returns the number of ids moved.

local moved = redis.call('LLEN', KEYS[2])
if moved > 0 then
  if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('RENAME', KEYS[2], KEYS[1])
  else
    -- held ids are older than anything pushed to pending meanwhile: they go to the tail
    local ids = redis.call('LRANGE', KEYS[2], 0, -1)
    for i = 1, #ids, 1000 do
      redis.call('RPUSH', KEYS[1], unpack(ids, i, math.min(i + 999, #ids)))
    end
    redis.call('DEL', KEYS[2])
  end
end
redis.call('DEL', KEYS[3])
return moved
