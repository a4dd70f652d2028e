-- wrk script: POST a client_credentials form body to the token endpoint.
-- Usage: wrk ... -s token.lua URL -- 'grant_type=client_credentials&client_id=..&...'
-- done() prints one machine-readable line that bench/run parses:
--   BENCH requests=N duration_us=N rps=F p50_us=N p90_us=N p99_us=N max_us=N
--         non2xx=N err_connect=N err_read=N err_write=N err_timeout=N

function init(args)
  wrk.method = "POST"
  wrk.body = args[1] or os.getenv("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Accept"] = "application/json"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
