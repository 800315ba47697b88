-- post.lua — POST a JSON body read from the file given after "--", with report.lua's
-- done() line. The bodies are written by `bench_core --bodies DIR` (the same requests the
-- in-process benchmarks run):
--   wrk -t1 -c4 -d3s -s bench/wrk/post.lua http://127.0.0.1:PORT/explain/lime -- DIR/lime.json
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

function init(args)
  local path = args[1]
  if not path then error("post.lua: give the body file after --") end
  local f = assert(io.open(path, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
