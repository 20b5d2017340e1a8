-- wrk script for scripts/soak.sh: POSTs the Hub's sample payloads in turn, with the secret,
-- counts every answer that is not 2xx, and prints one JSON line at the end.
-- Env: SOAK_FIXTURES (a folder of *.json), SOAK_SECRET, SOAK_PATH.
local dir = os.getenv("SOAK_FIXTURES")
local bodies = {}
local list = io.popen('ls "' .. dir .. '"/*.json')
for path in list:lines() do
  local f = assert(io.open(path, "rb"))
  bodies[#bodies + 1] = f:read("*a")
  f:close()
end
list:close()
assert(#bodies > 0, "no sample payloads in " .. dir)

local headers = {
  ["Content-Type"] = "application/json",
  ["X-Webhook-Secret"] = os.getenv("SOAK_SECRET"),
}
local path = os.getenv("SOAK_PATH")
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  not_2xx = 0
end

function request()
  n = n + 1
  return wrk.format("POST", path, headers, bodies[(n % #bodies) + 1])
end

function response(status, hdrs, body)
  if status < 200 or status > 299 then
    not_2xx = not_2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("not_2xx")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_s":%.1f,"rps":%.1f,"not_2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), bad,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
