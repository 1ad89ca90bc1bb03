-- wrk script: an authorization request that ends at the consent page (200), for the client
-- whose id is in the CLIENT_ID environment variable; counts non-200s.
local client_id = os.getenv("CLIENT_ID")
wrk.method = "GET"
wrk.path = "/authorize?response_type=code&client_id=" .. client_id
  .. "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcallback&state=wrk&scope=mcp%3Aread"
  .. "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"

expected_status = 200
dofile("bench/count.lua")
