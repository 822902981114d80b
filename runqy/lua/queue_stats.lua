-- Statistics of one sub-queue, read atomically (docs/product.md §6).
--
-- KEYS[1]  -> asynq:{Q}:pending
-- KEYS[2]  -> runqy:{Q}:held
-- KEYS[3]  -> asynq:{Q}:active
-- KEYS[4]  -> asynq:{Q}:scheduled
-- KEYS[5]  -> asynq:{Q}:retry
-- KEYS[6]  -> asynq:{Q}:archived
-- KEYS[7]  -> asynq:{Q}:completed
-- KEYS[8]  -> asynq:{Q}:paused
-- KEYS[9]  -> asynq:{Q}:processed
-- KEYS[10] -> asynq:{Q}:failed
-- KEYS[11] -> asynq:{Q}:processed:<today>
-- KEYS[12] -> asynq:{Q}:failed:<today>
-- ARGV[1]  -> asynq:{Q}:t: (task key prefix)
--
-- Returns {pending, held, active, scheduled, retry, archived, completed, paused (0/1),
--          processed, failed, processed_today, failed_today, oldest_pending_since ("" if none)}

local oldest = redis.call('LINDEX', KEYS[2], -1) or redis.call('LINDEX', KEYS[1], -1)
local since = ''
if oldest then
  since = redis.call('HGET', ARGV[1] .. oldest, 'pending_since') or
          redis.call('HGET', ARGV[1] .. oldest, 'enqueued_at') or ''
end
return {
  redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('LLEN', KEYS[3]),
  redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]), redis.call('ZCARD', KEYS[6]),
  redis.call('ZCARD', KEYS[7]), redis.call('EXISTS', KEYS[8]),
  tonumber(redis.call('GET', KEYS[9]) or '0'), tonumber(redis.call('GET', KEYS[10]) or '0'),
  tonumber(redis.call('GET', KEYS[11]) or '0'), tonumber(redis.call('GET', KEYS[12]) or '0'),
  since,
}
