-- Give a lease up, if the caller still holds it (a lease that expired and was taken by
-- another holder stays theirs).
--
-- KEYS[1] -> the lease, e.g. runqy:housekeeper
-- ARGV[1] -> the caller's holder id
--
-- Returns 1 when released, 0 when the caller did not hold it

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
