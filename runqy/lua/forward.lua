-- Move the due tasks of one sub-queue to where runqy-worker takes them (docs/product.md §5),
-- as asynq's forwarder does: the scheduled tasks, which the worker never moves, and the due
-- retries, which its own forwarder also moves (each id leaves its set in the same atomic step
-- that pushes it, so the two never move one task twice). Each task's hash says state pending,
-- with pending_since, before its id is pushed. For a paused queue the ids go to the held list,
-- and ids that reached its pending list by other ways (the worker's retry forwarder, its
-- shutdown re-queue) are swept there too, oldest first, so that the worker never takes them.
-- The task hashes are read from their ids (ARGV[2] .. id), all in this queue's hash slot.
--
-- KEYS[1] -> asynq:{Q}:scheduled
-- KEYS[2] -> asynq:{Q}:retry
-- KEYS[3] -> asynq:{Q}:pending
-- KEYS[4] -> runqy:{Q}:held
-- KEYS[5] -> asynq:{Q}:paused
-- KEYS[6] -> runqy:housekeeping  counters of the tasks moved, by field
-- ARGV[1] -> now, Unix seconds
-- ARGV[2] -> asynq:{Q}:t: (task key prefix)
-- ARGV[3] -> the most ids moved from each set, and swept, in one call
--
-- Returns {moved from scheduled, moved from retry, swept from pending to held}; a count equal
-- to ARGV[3] means there may be more

local now, prefix, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local paused = redis.call('EXISTS', KEYS[5]) == 1
local list = paused and KEYS[4] or KEYS[3]

local function forward(set)
  local ids = redis.call('ZRANGEBYSCORE', set, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', set, id)
    -- an id whose hash has expired or was deleted is dropped, not handed to a worker
    if redis.call('EXISTS', prefix .. id) == 1 then
      redis.call('HSET', prefix .. id, 'state', 'pending', 'pending_since', now)
      redis.call('LPUSH', list, id)
    end
  end
  return #ids
end

local scheduled = forward(KEYS[1])
local retried = forward(KEYS[2])
local swept = 0
if paused then
  while swept < limit and redis.call('LMOVE', KEYS[3], KEYS[4], 'RIGHT', 'LEFT') do
    swept = swept + 1
  end
end
if scheduled > 0 then redis.call('HINCRBY', KEYS[6], 'scheduled', scheduled) end
if retried > 0 then redis.call('HINCRBY', KEYS[6], 'retry', retried) end
if swept > 0 then redis.call('HINCRBY', KEYS[6], 'swept', swept) end
return {scheduled, retried, swept}
