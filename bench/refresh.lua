-- wrk script: the refresh_token grant, each request presenting a token not used before. The
-- refresh tokens (one grant each) are read from the file named by TOKENS; each thread takes its
-- share and replaces every token it spends by the one the answer rotates in. Counts non-200s.
expected_status = 200
dofile("bench/count.lua")

local client_id = os.getenv("CLIENT_ID")
local queue = {}

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
  local next = status == 200 and body:match('"refresh_token":"([^"]+)"')
  if next then table.insert(queue, next) else unexpected() end
end
