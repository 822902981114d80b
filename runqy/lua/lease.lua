-- Take or renew a lease (docs/product.md §5: one housekeeper across every server process):
-- the caller holds it when the key names it (renewed) or names nobody (taken, SET NX PX).
--
-- KEYS[1] -> the lease, e.g. runqy:housekeeper
-- ARGV[1] -> the caller's holder id
-- ARGV[2] -> lifetime of the lease, milliseconds
--
-- Returns 1 when the caller holds the lease now, 0 when another holder does

if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
