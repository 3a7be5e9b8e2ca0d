-- wrk script of run.sh --wrk: the W0 and W1 requests from a second load
-- generator, to tell the server's limit from k6's. Environment:
--
--   WRK_IDS      file of user ids, one a line: each request is then
--                GET /users/<random id> (W1); unset: the URL as given (W0)
--   WRK_TOKEN    bearer token sent with every request (W1: the admin's)
--   WRK_SUMMARY  file that done() writes its figures to as JSON (default:
--                stdout), read by run.sh and report.py
--
-- The W1 requests are formatted once, here at the top level, because wrk
-- calls request() in its main Lua state too (to check the request) without
-- running init() there. No response(): defining it makes wrk parse every
-- response in Lua, and wrk counts status >= 400 itself (errors.status).

local token = os.getenv("WRK_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local ids_path = os.getenv("WRK_IDS")
if ids_path and ids_path ~= "" then
  local requests = {}
  for id in io.lines(ids_path) do
    if id ~= "" then
      requests[#requests + 1] = wrk.format("GET", "/users/" .. id)
    end
  end
  assert(#requests > 0, "no ids in " .. ids_path)
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
