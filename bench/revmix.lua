-- The revocation mix: POST /introspect of a random token from $TOKENS_FILE, except that every
-- $REVOKE_EVERY-th request of a thread is a POST /revoke, as the client that owns the tokens
-- ($TOKEN_AUTH), of a token of the file that no earlier request revoked. Each token sent for
-- revocation is appended to $REVOKED_FILE first, so that run.sh can check afterwards that all
-- of them are inactive; tokens already in that file (an earlier run's) are never sent again.
-- Thread k of $BENCH_THREADS revokes only tokens k, k + n, k + 2n, ... of the file.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local every = tonumber(os.getenv("REVOKE_EVERY") or "100")
local tokens, requests_pool
local candidates = {}
local next_candidate = 1
local sent = 0
local revoked_out
local revoke_headers = {
   ["Authorization"] = "Basic " .. assert(os.getenv("TOKEN_AUTH"), "TOKEN_AUTH is not set"),
   ["Content-Type"] = "application/x-www-form-urlencoded",
}

function init(args)
   tokens = common.read_lines("TOKENS_FILE")
   requests_pool = common.introspect_requests(tokens)
   local path = assert(os.getenv("REVOKED_FILE"), "REVOKED_FILE is not set")
   local already = {}
   local f = io.open(path, "r")
   if f then
      for line in f:lines() do
         already[line] = true
      end
      f:close()
   end
   local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
   for i = thread_id or 1, #tokens, threads do
      if not already[tokens[i]] then
         table.insert(candidates, i)
      end
   end
   revoked_out = assert(io.open(path, "a"))
   revoked_out:setvbuf("line")
   math.randomseed(os.time() * 1000 + (thread_id or 0))
end

function request()
   sent = sent + 1
   if sent % every == 0 and next_candidate <= #candidates then
      local token = tokens[candidates[next_candidate]]
      next_candidate = next_candidate + 1
      revoked_out:write(token, "\n")
      return wrk.format("POST", "/revoke", revoke_headers, "token=" .. token)
   end
   return requests_pool[math.random(#requests_pool)]
end

-- Revocations answer 200 with an empty body, so the body check cannot tell them apart from
-- failed introspections by status alone.
common.install_verifier(function(status, body)
   return status == 200 and (body == "" or body:find('"active":', 1, true) ~= nil)
end)
