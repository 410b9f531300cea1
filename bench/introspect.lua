-- POST /introspect with a random token from $TOKENS_FILE per request, authenticated with
-- HTTP Basic ($INTROSPECT_AUTH = base64 of "client_id:client_secret").
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local requests_pool = {}

function init(args)
   local auth = assert(os.getenv("INTROSPECT_AUTH"), "INTROSPECT_AUTH is not set")
   local path = assert(os.getenv("TOKENS_FILE"), "TOKENS_FILE is not set")
   local headers = {
      ["Authorization"] = "Basic " .. auth,
      ["Content-Type"] = "application/x-www-form-urlencoded",
   }
   -- Pre-build every request once, so that the per-request cost on the client is a table lookup.
   for token in io.lines(path) do
      if #token > 0 then
         table.insert(requests_pool, wrk.format("POST", "/introspect", headers, "token=" .. token))
      end
   end
   assert(#requests_pool > 0, "no tokens in " .. path)
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function request()
   return requests_pool[math.random(#requests_pool)]
end

common.install_verifier(function(status, body)
   return status == 200 and body:find('"active":true', 1, true) ~= nil
end)
