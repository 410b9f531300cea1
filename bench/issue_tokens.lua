-- Issues access tokens with client_credentials and appends each to $TOKENS_FILE, one per line,
-- stopping once $TOKENS have been written. Run with -t1 (one writer).
local wanted = tonumber(os.getenv("TOKENS") or "1000")
local out = assert(io.open(assert(os.getenv("TOKENS_FILE"), "TOKENS_FILE is not set"), "a"))
out:setvbuf("line")
local written = 0

wrk.method = "POST"
wrk.path = "/token"
wrk.body = "grant_type=client_credentials"
wrk.headers["Authorization"] = "Basic " .. assert(os.getenv("TOKEN_AUTH"), "TOKEN_AUTH is not set")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function response(status, headers, body)
   if status == 200 then
      local token = body:match('"access_token"%s*:%s*"([^"]+)"')
      if token then
         out:write(token, "\n")
         written = written + 1
      end
   end
   if written >= wanted then
      out:flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   io.write(string.format("ISSUED requests=%d non2xx=%d\n", summary.requests, summary.errors.status))
end
