-- wrk script for the restart storm (see bench/README.md):
--   wrk ... -s storm.lua URL -- FILE   POST /token once per line of FILE
--                                      (an Authorization header), then stop
-- It also ends with load.lua's line "RESULT requests seconds non2xx
-- socket_errors p50_us p99_us max_us", whose seconds are wrk's duration.

-- wrk waits out its -d duration even after a thread stops, so the storm
-- times itself: from its first request to its last answer (LuaJIT's FFI,
-- CLOCK_MONOTONIC), and prints "STORM answers seconds non2xx" then.
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } storm_timespec;
  int clock_gettime(int clock, storm_timespec *t);
]]
local clock = ffi.new("storm_timespec")
local function now()
  ffi.C.clock_gettime(1, clock)
  return tonumber(clock.tv_sec) + tonumber(clock.tv_nsec) / 1e9
end

local lines = {}
local n = 0
local answered = 0
local failed = 0
local started = nil

function init(args)
  for line in io.lines(args[1]) do
    lines[#lines + 1] = line
  end
end

function request()
  started = started or now()
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
  if status > 299 then
    failed = failed + 1
  end
  if answered == #lines then
    io.write(string.format("STORM %d %.3f %d\n", answered, now() - started, failed))
    wrk.thread:stop()
  end
end

-- `done`, beside this script.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "result.lua")
