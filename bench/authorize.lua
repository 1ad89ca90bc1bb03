-- wrk script: an authorization request that ends at the consent page (200), for the client
-- whose id is in the CLIENT_ID environment variable; counts non-200s.
local client_id = os.getenv("CLIENT_ID")
wrk.method = "GET"
wrk.path = "/authorize?response_type=code&client_id=" .. client_id
  .. "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&state=wrk&scope=mcp%3Aread"
  .. "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"

-- Each wrk thread runs its own copy of this script: errors are counted per thread (a global,
-- so that `done`, which runs in the main state, can read every thread's count).
local threads = {}
setup = function(thread) table.insert(threads, thread) end
bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("unexpected responses: %d\n", total))
end
