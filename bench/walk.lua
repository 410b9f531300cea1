-- Introspects the tokens of $TOKENS_FILE in file order, so that each is looked up once (it
-- fills Umbra's introspection cache). After as many responses as tokens it writes
-- "WALKED tokens=N inactive=M" to $WALK_DONE_FILE and stops; run.sh interrupts wrk then.
-- Run with -t1: one thread walks the whole file.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local requests_pool
local next_index = 1
local answered = 0
local inactive = 0

function init(args)
   requests_pool = common.introspect_requests(common.read_lines("TOKENS_FILE"))
end

function request()
   local r = requests_pool[next_index]
   next_index = next_index % #requests_pool + 1
   return r
end

function response(status, headers, body)
   answered = answered + 1
   if answered <= #requests_pool and not common.is_active(status, body) then
      inactive = inactive + 1
   end
   if answered == #requests_pool then
      local out = assert(io.open(assert(os.getenv("WALK_DONE_FILE"), "WALK_DONE_FILE is not set"), "w"))
      out:write(string.format("WALKED tokens=%d inactive=%d\n", #requests_pool, inactive))
      out:close()
      wrk.thread:stop()
   end
end
