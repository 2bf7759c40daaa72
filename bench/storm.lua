-- wrk script for the restart storm (see bench/README.md):
--   wrk ... -s storm.lua URL -- FILE   POST /token once per line of FILE
--                                      (an Authorization header), then stop
-- It ends with the same machine-readable line as load.lua: "RESULT requests
-- seconds non2xx socket_errors p50_us p99_us max_us".

local lines = {}
local n = 0
local answered = 0

function init(args)
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
end

function request()
  n = n + 1
  -- Past the last line (connections still open), repeat the first: the
  -- run stops as soon as every line has its answer.
  local line = lines[n] or lines[1]
  return wrk.format("POST", "/token", {
    ["Authorization"] = line,
    ["Content-Type"] = "application/x-www-form-urlencoded",
  }, "grant_type=client_credentials")
end

function response(status, headers, body)
  answered = answered + 1
  if answered >= #lines then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %d %d %d %d %d\n",
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
