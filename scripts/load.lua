-- wrk script for scripts/load.sh: POSTs one body with the secret header, and prints one
-- JSON line (prefixed RESULT) at the end.
-- Env: LOAD_BODY (a file), LOAD_SECRET (empty: no header), LOAD_STATUSES=1 to count each
-- status (a Lua call per answer: used only for the short wrong-secret and malformed runs).
local f = assert(io.open(os.getenv("LOAD_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local secret = os.getenv("LOAD_SECRET") or ""
if secret ~= "" then
  wrk.headers["X-Webhook-Secret"] = secret
end

-- LOAD_ID_PREFIX set: each request carries its own `Webhook-Id` (PREFIX-1, PREFIX-2, ...),
-- as the Hub's deliveries do, so that a queued endpoint stores each one (no dedupe).
local id_prefix = os.getenv("LOAD_ID_PREFIX") or ""
if id_prefix ~= "" then
  local sent = 0
  function request()
    sent = sent + 1
    wrk.headers["Webhook-Id"] = id_prefix .. "-" .. sent
    return wrk.format()
  end
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

if os.getenv("LOAD_STATUSES") == "1" then
  function init(args)
    statuses = {}
  end
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for status, n in pairs(s) do
        counts[#counts + 1] = string.format('"%d":%d', status, n)
      end
    end
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'RESULT {"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"status_ge_400":%d,"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout, table.concat(counts, ",")))
end
