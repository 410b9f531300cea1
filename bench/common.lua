-- Shared helpers for the Umbra wrk scripts (loaded with dofile from the script's directory).
-- Each scenario script sets `bench_check(status, body)` (returns true when a response is good)
-- and calls bench_install(); done() then prints one machine-readable BENCH line.
local M = {}

local threads = {}
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("thread_id", next_id)
   table.insert(threads, thread)
end

-- Only define response() when body checks are asked for: a response() callback makes wrk
-- parse and copy every body into Lua, which costs CPU that the server would otherwise get.
function M.install_verifier(check)
   if os.getenv("VERIFY_BODIES") == "1" then
      bad = 0
      function response(status, headers, body)
         if not check(status, body) then
            bad = bad + 1
         end
      end
   end
end

-- The non-empty lines of the file at $NAME, in order.
function M.read_lines(name)
   local path = assert(os.getenv(name), name .. " is not set")
   local lines = {}
   for line in io.lines(path) do
      if #line > 0 then
         table.insert(lines, line)
      end
   end
   return lines
end

-- One pre-built POST /introspect per token (HTTP Basic with $INTROSPECT_AUTH), so that the
-- per-request cost on the client is a table lookup.
function M.introspect_requests(tokens)
   local headers = {
      ["Authorization"] = "Basic " .. assert(os.getenv("INTROSPECT_AUTH"), "INTROSPECT_AUTH is not set"),
      ["Content-Type"] = "application/x-www-form-urlencoded",
   }
   local requests = {}
   for i, token in ipairs(tokens) do
      requests[i] = wrk.format("POST", "/introspect", headers, "token=" .. token)
   end
   assert(#requests > 0, "no tokens to introspect")
   return requests
end

function M.is_active(status, body)
   return status == 200 and body:find('"active":true', 1, true) ~= nil
end

function done(summary, latency, requests)
   local bad_bodies = 0
   for _, t in ipairs(threads) do
      bad_bodies = bad_bodies + (tonumber(t:get("bad")) or 0)
   end
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
      "non2xx=%d connect_err=%d read_err=%d write_err=%d timeout_err=%d bad_bodies=%d verified=%s\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000,
      e.status, e.connect, e.read, e.write, e.timeout, bad_bodies,
      os.getenv("VERIFY_BODIES") == "1" and "yes" or "no"))
end

return M
