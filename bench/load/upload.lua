-- wrk script for the Alpes load bench (bench/load/run.sh).
--
-- Run wrk with as many threads as connections (-t C -c C): each wrk thread
-- then owns exactly one connection, so request() and response() pair up and
-- this script can time every request itself (raw latencies, no wrk
-- "coordinated omission" correction) and log one line per request.
--
-- Arguments (after `--`):
--   1 mode        alpes   : POST /imagenes (one request per file)
--                 orthanc : POST /instances, then POST /instances/{ID}/anonymize
--   2 files       a text file, one DICOM path per line; file j goes to thread j % T
--   3 tokens      alpes: bearer tokens, one per line; pass p (0-based) uses line p+1,
--                 so every request carries distinct (provider, bytes) and no upload
--                 is a de-duplicated repeat. orthanc: ignored ("-").
--   4 logdir      each thread writes LOGDIR/req-<tid>.tsv and LOGDIR/done-<tid>
--   5 passes      passes over the thread's files; 0 = until wrk's -d ends
--   6 rate        total target requests/s (uploads/s) over all threads; 0 = as fast as possible
--   7 start_at    unix time (s) at which every thread sends its first request
--   8 nthreads    T, the wrk -t value
--
-- Log line (tab separated), alpes:
--   tid seq pass file_index bytes send_unix_s latency_s status id duplicate [error body, non-202 only]
-- orthanc:
--   tid seq pass file_index bytes send_unix_s latency_s status id anon_status
--   anon_latency_s anon_bytes
-- (latency_s is the POST /instances latency; total = latency_s + anon_latency_s).

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } alpes_bench_timespec;
int clock_gettime(int clk, alpes_bench_timespec *ts);
]]
local tsbuf = ffi.new("alpes_bench_timespec")
local function clock(id)
  ffi.C.clock_gettime(id, tsbuf)
  return tonumber(tsbuf.tv_sec) + tonumber(tsbuf.tv_nsec) * 1e-9
end
local function now_real() return clock(0) end -- CLOCK_REALTIME: joins with Kafka timestamps
local function now_mono() return clock(1) end -- CLOCK_MONOTONIC: latencies

-- setup() runs in wrk's main Lua state, once per thread, before init().
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local mode, bodies, paths, sizes, indices, tokens, log, done_path
-- ALPES_UPLOAD_QUERY (environment): the profile query string of every Alpes upload,
-- e.g. "no_clean=pixel-data" for a profile without the Clean Pixel Data option.
local upload_query = os.getenv("ALPES_UPLOAD_QUERY") or ""
local upload_path = upload_query == "" and "/imagenes" or ("/imagenes?" .. upload_query)
local passes, interval, start_at
local pos, pass, seq = 0, 0, 0
local next_slot, started = nil, false
local state, cur, t_send_real, t_send_mono, up_lat, up_status, inst_id
local finished = false

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

function init(args)
  mode = args[1]
  local files = read_lines(args[2])
  tokens = (mode == "alpes") and read_lines(args[3]) or {}
  local logdir = args[4]
  passes = tonumber(args[5])
  local rate = tonumber(args[6])
  start_at = tonumber(args[7])
  local nthreads = tonumber(args[8])
  bodies, sizes, indices = {}, {}, {}
  for j = 1, #files do
    if (j - 1) % nthreads == tid then
      local f = assert(io.open(files[j], "rb"))
      local b = f:read("*a")
      f:close()
      bodies[#bodies + 1] = b
      sizes[#sizes + 1] = #b
      indices[#indices + 1] = j - 1
    end
  end
  interval = (rate > 0) and (nthreads / rate) or 0
  log = assert(io.open(string.format("%s/req-%03d.tsv", logdir, tid), "w"))
  log:setvbuf("line")
  done_path = string.format("%s/done-%03d", logdir, tid)
  state = "next"
  if #bodies == 0 then finished = true end
end

local function finish()
  finished = true
  log:flush()
  local f = io.open(done_path, "w")
  if f then f:write("done\n"); f:close() end
  wrk.thread:stop()
end

-- Advances to the next file; false when the thread's passes are done.
local function advance()
  pos = pos + 1
  if pos > #bodies then
    pos = 1
    pass = pass + 1
  end
  if passes > 0 and pass >= passes then return false end
  cur = pos
  return true
end

function delay()
  if finished then return 3600000 end
  local now = now_real()
  if not started then
    started = true
    next_slot = math.max(now, start_at)
  end
  if state == "anon" then return 0 end -- second step of the Orthanc pair: no pacing
  local wait = next_slot - now
  next_slot = math.max(next_slot, now - 1.0) + interval -- never bank more than 1 s of catch-up
  if wait <= 0 then return 0 end
  return math.floor(wait * 1000 + 0.5)
end

function request()
  if not started then
    -- wrk calls request() once in its main thread to check for pipelining, before
    -- any delay(): answer with one request and consume nothing.
    return wrk.format("GET", (mode == "alpes") and "/health" or "/system")
  end
  if state == "anon" then
    t_send_mono = now_mono()
    return wrk.format("POST", "/instances/" .. inst_id .. "/anonymize",
      { ["Content-Type"] = "application/json" }, "{}")
  end
  if not advance() then
    -- Nothing left: send a cheap request that is neither timed nor logged, then stop.
    finish()
    return wrk.format("GET", (mode == "alpes") and "/health" or "/system")
  end
  t_send_real = now_real()
  t_send_mono = now_mono()
  if mode == "alpes" then
    local tok = tokens[pass + 1]
    if tok == nil then error("upload.lua: ran out of provider tokens at pass " .. pass) end
    return wrk.format("POST", upload_path,
      { ["Authorization"] = "Bearer " .. tok, ["Content-Type"] = "application/dicom" }, bodies[cur])
  end
  return wrk.format("POST", "/instances", { ["Content-Type"] = "application/dicom" }, bodies[cur])
end

function response(status, headers, body)
  if finished then return end
  local lat = now_mono() - t_send_mono
  seq = seq + 1
  if mode == "alpes" then
    local id = string.match(body or "", '"id":"([^"]+)"') or "-"
    local dup = string.find(body or "", '"duplicate":true', 1, true) and 1 or 0
    local err = ""
    if status ~= 202 then -- keep the error body (one line, 300 bytes at most) for the report
      err = "\t" .. string.sub(string.gsub(body or "", "[\t\r\n]", " "), 1, 300)
    end
    log:write(string.format("%d\t%d\t%d\t%d\t%d\t%.6f\t%.6f\t%d\t%s\t%d%s\n",
      tid, seq, pass, indices[cur], sizes[cur], t_send_real, lat, status, id, dup, err))
    if passes > 0 and pass >= passes - 1 and pos >= #bodies then finish() end
    return
  end
  if state == "anon" then
    log:write(string.format("%d\t%d\t%d\t%d\t%d\t%.6f\t%.6f\t%d\t%s\t%d\t%.6f\t%d\n",
      tid, seq, pass, indices[cur], sizes[cur], t_send_real, up_lat, up_status, inst_id, status, lat, #(body or "")))
    state = "next"
  else
    local id = string.match(body or "", '"ID"%s*:%s*"([^"]+)"')
    if status == 200 and id then
      up_lat, up_status, inst_id = lat, status, id
      state = "anon"
      return -- the anonymize request follows on this connection
    end
    log:write(string.format("%d\t%d\t%d\t%d\t%d\t%.6f\t%.6f\t%d\t%s\t%d\t%.6f\t%d\n",
      tid, seq, pass, indices[cur], sizes[cur], t_send_real, lat, status, "-", 0, 0, 0))
  end
  if passes > 0 and pass >= passes - 1 and pos >= #bodies then finish() end
end
