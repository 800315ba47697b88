-- get.lua — plain GET of the URL's path (e.g. /healthz), with report.lua's done() line.
--   wrk -t1 -c4 -d3s -s bench/wrk/get.lua http://127.0.0.1:PORT/healthz
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
