-- Which of the waited-for tasks have finished (docs/product.md §3: GET /queue/{id}?wait=):
-- completed, archived, or gone (deleted or expired, which ends a wait with a 404). One call for
-- every task the requests of one server process wait for, whatever their queues.
--
-- KEYS[i] -> asynq:{Q_i}:t:<id_i>
--
-- Returns the indexes i (1-based) of the tasks that have finished

local done = {}
for i, key in ipairs(KEYS) do
  local state = redis.call('HGET', key, 'state')
  if not state or state == 'completed' or state == 'archived' then
    done[#done + 1] = i
  end
end
return done
