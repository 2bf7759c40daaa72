-- The machine-readable last line both wrk scripts print (load.lua,
-- storm.lua): "RESULT requests seconds non2xx socket_errors p50_us p99_us
-- max_us".
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %d %d %d %d %d\n",
    summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
