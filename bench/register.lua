-- wrk script: dynamic client registration (RFC 7591) of a public client; counts non-201s.
wrk.method = "POST"
wrk.path = "/register"
wrk.body = '{"redirect_uris":["http://127.0.0.1:9/callback"],"token_endpoint_auth_method":"none",'
  .. '"grant_types":["authorization_code","refresh_token"],"client_name":"wrk"}'
wrk.headers["Content-Type"] = "application/json"

expected_status = 201
dofile("bench/count.lua")
