-- wrk script: the flows of locustfile.py, driven by wrk (bench/locust/run.sh), for the
-- Locust vs wrk comparison of issue 20. The same requests in the same order as the
-- Locust user classes, with the same success statuses.
--
-- Run wrk with as many threads as connections (-t C -c C): each wrk thread then owns
-- one connection, so request() and response() pair up, the script can chain the
-- registration flow's four requests, and it times every request itself (raw latency,
-- from request() to response(), through clock_gettime; no coordinated-omission
-- correction), which lets the report give per-request percentiles as Locust does.
--
-- Arguments (after `--`):
--   1 mode     registration | upload | download
--   2 setup    the directory setup.py wrote: setup.lua (tokens and ids as Lua, made by
--              run.sh from setup.json) and download-ids.txt
--   3 logdir   each thread writes LOGDIR/req-<tid>.tsv: name, status, latency_s
--              [, first 200 bytes of the body when the status is not the expected one]
--   4 run      a label put into every MRN and upload tag (distinct per run)
--
-- registration: POST /pacientes (provider, a new MRN) -> GET /pacientes/{id} (provider)
--               -> POST /pacientes/{id}/validar (doctor) -> ... (provider), then again.
-- upload:       POST /imagenes, CT_small.dcm plus a trailing (FFFC,FFFC) OB padding
--               element carrying a unique tag (the bytes common.py `padded` makes).
-- download:     GET /imagenes/{id}/anonimizada (consumer), round robin over the ids.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } alpes_flows_timespec;
int clock_gettime(int clk, alpes_flows_timespec *ts);
]]
local tsbuf = ffi.new("alpes_flows_timespec")
local function now_mono()
  ffi.C.clock_gettime(1, tsbuf) -- CLOCK_MONOTONIC
  return tonumber(tsbuf.tv_sec) + tonumber(tsbuf.tv_nsec) * 1e-9
end

-- setup() runs in wrk's main Lua state, once per thread, before that thread's init().
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

local mode, cfg, log, run
local seq, calls = 0, 0
local ids, pos
local ct, upload_headers
local step, patient, t0, cur_name, cur_expect

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

local function u32le(n)
  return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 16777216) % 256)
end

-- CT_small plus Data Set Trailing Padding (FFFC,FFFC), OB, carrying `tag` (even length).
local function padded(tag)
  if #tag % 2 == 1 then tag = tag .. "\0" end
  return ct .. "\252\255\252\255OB\0\0" .. u32le(#tag) .. tag
end

function init(args)
  mode = args[1]
  local dir = args[2]
  cfg = dofile(dir .. "/setup.lua")
  run = args[4]
  log = assert(io.open(string.format("%s/req-%03d.tsv", args[3], tid), "w"))
  log:setvbuf("full", 65536)
  if mode == "registration" then
    step = 1
  elseif mode == "upload" then
    local f = assert(io.open(cfg.ct_path, "rb"))
    ct = f:read("*a")
    f:close()
    upload_headers = { ["Authorization"] = "Bearer " .. cfg.upload_token, ["Content-Type"] = "application/dicom" }
  elseif mode == "download" then
    local list = read_lines(dir .. "/download-ids.txt")
    local headers = { ["Authorization"] = "Bearer " .. cfg.consumer_token }
    ids = {}
    for i = 1, #list do
      ids[i] = wrk.format("GET", "/imagenes/" .. list[i] .. "/anonimizada", headers)
    end
    pos = (tid * 7919) % #ids -- threads start at different images
  else
    error("flows.lua: unknown mode " .. tostring(mode))
  end
end

local function next_tag()
  seq = seq + 1
  return string.format("W%s-%d-%d", run, tid, seq)
end

local function registration_request()
  local prov = { ["Authorization"] = "Bearer " .. cfg.provider_token }
  if step == 1 then
    local mrn = next_tag()
    cur_name, cur_expect = "POST /pacientes", 201
    prov["Content-Type"] = "application/json"
    return wrk.format("POST", "/pacientes", prov, string.format(
      '{"nombre":"Paciente %s","email":"%s@patients.example","telefono":"+57 300 123 4567",' ..
      '"id_paciente":"%s","institucion_id":"%s","medico_id":"%s"}',
      mrn, string.lower(mrn), mrn, cfg.institucion_id, cfg.medico_id))
  elseif step == 2 then
    cur_name, cur_expect = "GET /pacientes/{id}", 200
    return wrk.format("GET", "/pacientes/" .. patient, prov)
  elseif step == 3 then
    cur_name, cur_expect = "POST /pacientes/{id}/validar (medico)", 200
    return wrk.format("POST", "/pacientes/" .. patient .. "/validar",
      { ["Authorization"] = "Bearer " .. cfg.medico_token })
  else
    cur_name, cur_expect = "POST /pacientes/{id}/validar (proveedor)", 200
    return wrk.format("POST", "/pacientes/" .. patient .. "/validar", prov)
  end
end

function request()
  calls = calls + 1
  if tid == 0 and calls == 1 then
    -- wrk calls thread 0's request() once before starting, to check for pipelining,
    -- and discards it: consume nothing.
    return wrk.format("GET", "/health")
  end
  t0 = now_mono()
  if mode == "registration" then
    return registration_request()
  elseif mode == "upload" then
    cur_name, cur_expect = "POST /imagenes", 202
    return wrk.format("POST", "/imagenes", upload_headers, padded(next_tag()))
  else
    cur_name, cur_expect = "GET /imagenes/{id}/anonimizada", 200
    pos = pos % #ids + 1
    return ids[pos]
  end
end

function response(status, headers, body)
  local lat = now_mono() - t0
  local ok = status == cur_expect
  if ok and mode == "upload" and string.find(body or "", '"duplicate":true', 1, true) then ok = false end
  if ok then
    log:write(cur_name, "\t", status, "\t", string.format("%.6f", lat), "\n")
  else
    log:write(cur_name, "\t", status, "\t", string.format("%.6f", lat), "\tFAIL ",
      string.sub(string.gsub(body or "", "[\t\r\n]", " "), 1, 200), "\n")
  end
  if mode == "registration" then
    if not ok then
      step = 1 -- as Locust: a failed step ends the iteration
    elseif step == 1 then
      patient = string.match(body or "", '"id"%s*:%s*"([^"]+)"')
      step = patient and 2 or 1
    else
      step = step % 4 + 1
    end
  end
end

function done(summary, latency, requests)
  io.write(string.format("BENCH duration_us=%d requests=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.duration, summary.requests, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status))
end
