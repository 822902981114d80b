-- Pause one sub-queue: its pending ids move to the held list, which runqy-worker
-- never polls, and asynq's paused flag is set for asynq tooling (product spec §5).
-- Both lists keep the asynq orientation (newest at the head, oldest at the tail),
-- so unpause can give the ids back in their original order. Pausing twice is harmless.
--
-- KEYS[1] -> asynq:{Q}:pending
-- KEYS[2] -> runqy:{Q}:held
-- KEYS[3] -> asynq:{Q}:paused
-- ARGV[1] -> now, Unix seconds (the flag's value, as asynq writes it)
--
-- Returns the number of ids moved.

local moved = redis.call('LLEN', KEYS[1])
if moved > 0 then
  if redis.call('EXISTS', KEYS[2]) == 0 then
    redis.call('RENAME', KEYS[1], KEYS[2])
  else
    -- ids still pending are older than every held one: they go behind them, at the tail
    local ids = redis.call('LRANGE', KEYS[1], 0, -1)
    for i = 1, #ids, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
    end
    redis.call('DEL', KEYS[1])
  end
end
redis.call('SET', KEYS[3], ARGV[1])
return moved
