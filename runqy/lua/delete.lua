-- Delete a task that is not running: remove it from every list and delete its hash
-- (docs/product.md §5); a unique task releases its lock. The caller deletes the reverse key,
-- which lives in another slot.
--
-- KEYS[1]  -> asynq:{Q}:t:<id>
-- KEYS[2]  -> asynq:{Q}:active
-- KEYS[3]  -> asynq:{Q}:pending
-- KEYS[4]  -> runqy:{Q}:held
-- KEYS[5]  -> asynq:{Q}:scheduled
-- KEYS[6]  -> asynq:{Q}:retry
-- KEYS[7]  -> asynq:{Q}:archived
-- KEYS[8]  -> asynq:{Q}:completed
-- ARGV[1]  -> id
--
-- Returns 1 deleted, -1 no such task in this queue, -2 the task is running (in the active list;
-- a hash that says active but is in no list is an orphan and is deleted)

if redis.call('LPOS', KEYS[2], ARGV[1]) then
  return -2
end
-- a unique task gives its lock up, if it still holds it (the lock key is read from the hash:
-- it is in this queue's hash slot)
local lock = redis.call('HGET', KEYS[1], 'unique_key')
if lock and redis.call('GET', lock) == ARGV[1] then
  redis.call('DEL', lock)
end
local removed = redis.call('DEL', KEYS[1]) + redis.call('LREM', KEYS[3], 0, ARGV[1])
  + redis.call('LREM', KEYS[4], 0, ARGV[1])
for k = 5, 8 do
  removed = removed + redis.call('ZREM', KEYS[k], ARGV[1])
end
if removed == 0 then
  return -1
end
return 1
