-- Shared by the wrk scripts: counts answers whose status is not `expected_status` (set by the
-- script before loading this). Each wrk thread runs its own copy of a script, so the count is
-- a global per thread, and `done` (which runs in the main state) sums every thread's.
local threads = {}
setup = function(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
bad = 0
unexpected = function() bad = bad + 1 end
count = function(status)
  if status ~= expected_status then unexpected() end
end
response = function(status, headers, body) count(status) end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("unexpected responses: %d\n", total))
end
