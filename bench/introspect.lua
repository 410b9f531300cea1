-- POST /introspect with a random token from $TOKENS_FILE per request, authenticated with
-- HTTP Basic ($INTROSPECT_AUTH = base64 of "client_id:client_secret").
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local requests_pool

function init(args)
   requests_pool = common.introspect_requests(common.read_lines("TOKENS_FILE"))
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function request()
   return requests_pool[math.random(#requests_pool)]
end

common.install_verifier(common.is_active)
