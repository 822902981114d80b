-- Delete up to ARGV[2] tasks of one state of a sub-queue (docs/product.md §5), the oldest
-- first: each as delete.lua does, its unique lock released if it still holds it. The caller
-- calls again until fewer come back, so Redis is never blocked for long, and deletes the
-- reverse keys of the ids returned (they live in other slots). Running tasks are not
-- deleted: there is no such call for the active list.
--
-- KEYS[1] -> the state's list (asynq:{Q}:pending, runqy:{Q}:held) or sorted set
--            (asynq:{Q}:scheduled, retry, archived, completed)
-- ARGV[1] -> asynq:{Q}:t: (task key prefix)
-- ARGV[2] -> the most tasks deleted by this call
--
-- Returns the ids deleted

local n = tonumber(ARGV[2])
local ids
if redis.call('TYPE', KEYS[1]).ok == 'list' then
  -- the oldest are at the tail, where workers pop
  ids = redis.call('LRANGE', KEYS[1], -n, -1)
  redis.call('LTRIM', KEYS[1], 0, -(#ids + 1))
else
  ids = redis.call('ZRANGE', KEYS[1], 0, n - 1)
  if #ids > 0 then
    redis.call('ZREM', KEYS[1], unpack(ids))
  end
end
for _, id in ipairs(ids) do
  local hash = ARGV[1] .. id
  local lock = redis.call('HGET', hash, 'unique_key')
  if lock and redis.call('GET', lock) == id then
    redis.call('DEL', lock)
  end
  redis.call('DEL', hash)
end
return ids
