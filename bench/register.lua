-- wrk script: dynamic client registration (RFC 7591) of a public client; counts non-201s.
wrk.method = "POST"
wrk.path = "/register"
wrk.body = '{"redirect_uris":["http://127.0.0.1:9/callback"],"token_endpoint_auth_method":"none",'
  .. '"grant_types":["authorization_code","refresh_token"],"client_name":"wrk"}'
wrk.headers["Content-Type"] = "application/json"

-- Each wrk thread runs its own copy of this script: errors are counted per thread (a global,
-- so that `done`, which runs in the main state, can read every thread's count).
local threads = {}
setup = function(thread) table.insert(threads, thread) end
bad = 0
response = function(status, headers, body)
  if status ~= 201 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad") end
  io.write(string.format("unexpected responses: %d\n", total))
end
