-- POST /token, grant_type=client_credentials, HTTP Basic ($TOKEN_AUTH = base64 of
-- "client_id:client_secret").
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

wrk.method = "POST"
wrk.path = "/token"
wrk.body = "grant_type=client_credentials"
wrk.headers["Authorization"] = "Basic " .. assert(os.getenv("TOKEN_AUTH"), "TOKEN_AUTH is not set")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

common.install_verifier(function(status, body)
   return status == 200 and body:find('"access_token":"', 1, true) ~= nil
end)
