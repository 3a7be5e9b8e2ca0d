-- wrk script of run.sh --wrk: the requests of the read workloads from a
-- second load generator, to tell the server's limit from k6's. Environment:
--
--   WRK_PATHS    file of request paths, one a line (k6/wrk/admin_paths.py):
--                each request is then GET <random path> (W1, W2, W2c);
--                unset: the URL as given (W0)
--   WRK_PATCH    set: each line of WRK_PATHS is "<path> <token>", and each
--                request a merge patch of `name` to that path with that
--                token (W5)
--   WRK_TOKEN    bearer token sent with every request (the admin's)
--   WRK_SUMMARY  file that done() writes its figures to as JSON (default:
--                stdout), read by run.sh and report.py
--
-- The requests are formatted once, here at the top level, because wrk
-- calls request() in its main Lua state too (to check the request) without
-- running init() there. No response(): defining it makes wrk parse every
-- response in Lua, and wrk counts status >= 400 itself (errors.status).

local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local paths_file = os.getenv("WRK_PATHS")
if paths_file and paths_file ~= "" then
  local requests = {}
  local patch = os.getenv("WRK_PATCH")
  for line in io.lines(paths_file) do
    if line ~= "" and patch and patch ~= "" then
      local path, bearer = line:match("^(%S+) (%S+)$")
      requests[#requests + 1] = wrk.format("PATCH", path, {
        ["Authorization"] = "Bearer " .. bearer,
        ["Content-Type"] = "application/merge-patch+json",
      }, '{"name":"W5 writer"}')
    elseif line ~= "" then
      requests[#requests + 1] = wrk.format("GET", line)
    end
  end
  assert(#requests > 0, "no paths in " .. paths_file)
  math.randomseed(os.time())
  local count = #requests
  request = function()
    return requests[math.random(count)]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local ms = function(us) return string.format("%.3f", us / 1000) end
  local out = string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %s, "p90_ms": %s, "p95_ms": %s, '
      .. '"p99_ms": %s, "max_ms": %s, "mean_ms": %s, "errors": {"status": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, summary.duration / 1e6,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(95)),
    ms(latency:percentile(99)), ms(latency.max), ms(latency.mean),
    e.status, e.connect, e.read, e.write, e.timeout)
  local path = os.getenv("WRK_SUMMARY")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(out)
    f:close()
  else
    io.write(out)
  end
end
