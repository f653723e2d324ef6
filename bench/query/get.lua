-- wrk script for the read-path bench (bench/query/run.sh): GET PREFIX..ID over a
-- list of ids, round-robin, each wrk thread starting at a different offset.
--
-- Arguments (after `--`):
--   1 ids       text file, one id per line (Alpes image ids or Orthanc instance IDs)
--   2 prefix    path before the id: "/imagenes/" (Alpes) or "/instances/" (Orthanc)
--   3 token     bearer token sent as `Authorization: Bearer ...`; "-" = no header
--   4 nthreads  the wrk -t value (thread t starts at id number floor(t * N / nthreads))
--   5 check     1: count every response whose status is not 200 (defines response(),
--               which makes wrk hand each response's headers and body to Lua: client
--               CPU); 0: rely on wrk's own counter (status > 399) only
--   6 label     a name echoed in the result line
--
-- done() prints one machine-readable line to stdout:
--   BENCH {"label":..,"requests":..,"duration_us":..,"bytes":..,"non200":..,
--          "status_errors":..,"connect":..,"read":..,"write":..,"timeout":..,
--          "p50_us":..,"p90_us":..,"p99_us":..,"p999_us":..,"max_us":..,"mean_us":..,
--          "first_bad":".."}
-- non200 is -1 when check = 0. The latency percentiles are wrk's: per request, from
-- the first byte written to the end of the response, microseconds, after wrk 4.1's
-- coordinated-omission correction (the same numbers as `--latency` prints).

-- setup() runs in wrk's main Lua state, once per thread, before that thread's init().
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

-- Per-thread state (each thread has its own Lua state).
local reqs, pos, n
non200 = 0
first_bad = nil

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

function init(args)
  local ids = read_lines(args[1])
  local prefix = args[2]
  local token = args[3]
  local nthreads = tonumber(args[4])
  local check = args[5] ~= "0"
  label = args[6] or ""
  assert(#ids > 0, "no ids in " .. args[1])
  local headers = {}
  if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
  -- Every request pre-formatted once: request() does no string work.
  reqs = {}
  for i = 1, #ids do
    reqs[i] = wrk.format("GET", prefix .. ids[i], headers)
  end
  n = #ids
  pos = math.floor(tid * n / nthreads) -- 0-based; request() advances first
  if not check then
    response = nil -- wrk asks thread 0's state after init() whether to call response()
    non200 = -1
  end
end

function request()
  pos = pos % n + 1
  return reqs[pos]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == nil then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 200)
    end
  end
end

local function json_str(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local bad, first = 0, nil
  local label = threads[1] and threads[1]:get("label") or ""
  for _, t in ipairs(threads) do
    local b = t:get("non200")
    if b == nil or b < 0 then
      bad = -1
    elseif bad >= 0 then
      bad = bad + b
    end
    first = first or t:get("first_bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"label":%s,"requests":%d,"duration_us":%d,"bytes":%d,"non200":%d,' ..
    '"status_errors":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,"first_bad":%s}\n',
    json_str(label), summary.requests, summary.duration, summary.bytes, bad,
    e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean,
    first and json_str(first) or "null"))
end
