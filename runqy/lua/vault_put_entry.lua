-- Create or replace one entry of an existing vault (one key: slot-safe).
--
-- KEYS[1] -> runqy:vault:<name>   fields ':meta' (vault JSON) and 'e:<KEY>' (entry JSON)
-- ARGV[1] -> the metadata field, ':meta'
-- ARGV[2] -> entry field, 'e:<KEY>'
-- ARGV[3] -> entry JSON (the value is encrypted)
--
-- Returns 1 created, 0 replaced, -1 no such vault

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
end
return redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
