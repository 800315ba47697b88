-- report.lua — wrk's done() hook shared by get.lua and post.lua: one parseable line,
--   WRK {"requests":N,"duration_s":S,"rps":R,"p50_ms":..,"p99_ms":..,"mean_ms":..,"max_ms":..,
--        "non2xx":N,"socket_errors":N,"connect":N,"read":N,"write":N,"timeout":N, <WRK_TAG>}
-- non2xx is wrk's status error count (responses with a status of 400 or more). WRK_TAG
-- (environment, optional) is a JSON fragment bench/run.sh adds, e.g. "target":"healthz".
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local tag = os.getenv("WRK_TAG") or ""
  io.write(string.format(
    'WRK {"requests":%d,"duration_s":%.3f,"rps":%.2f,"p50_ms":%.3f,"p99_ms":%.3f,"mean_ms":%.3f,' ..
    '"max_ms":%.3f,"non2xx":%d,"socket_errors":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d%s%s}\n',
    summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.mean / 1e3, latency.max / 1e3, e.status,
    e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout,
    tag ~= "" and "," or "", tag))
end
