-- wrk script: the refresh_token grant, each request presenting a token not used before. The
-- refresh tokens (one grant each) are read from the file named by TOKENS; each thread takes its
-- share and replaces every token it spends by the one the answer rotates in. Counts non-200s.
-- Each wrk thread runs its own copy of this script: errors are counted per thread (a global,
-- so that `done`, which runs in the main state, can read every thread's count).
local threads = {}
local counter = 0

setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local client_id = os.getenv("CLIENT_ID")
local queue = {}
bad = 0

init = function(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
  local i = 0
  for line in io.lines(os.getenv("TOKENS")) do
    if line ~= "" and i % nthreads == id then table.insert(queue, line) end
    i = i + 1
  end
end

request = function()
  local token = table.remove(queue, 1) or "exhausted"
  local body = "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token=" .. token
  return wrk.format("POST", "/token", {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end

response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 return end
  local next = body:match('"refresh_token":"([^"]+)"')
  if next then table.insert(queue, next) else bad = bad + 1 end
end

done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("unexpected responses: %d\n", total))
end
