-- wrk script of perf/wallet_load.py, configured through WL_* environment variables:
--   WL_IDS     file of wallet ids, one a line; each request picks one at random
--   WL_METHOD  GET or POST;  WL_PATH  path with {id};  WL_BODY  request body (may be empty)
--   WL_OUT     where done() writes one JSON object: status counts, socket errors, latency
--   WL_SEED    random seed (distinct per wrk process; wrk threads add their own number)
-- Status classes are counted per thread and summed in done(): wrk's own summary knows only
-- "non-2xx or 3xx", and the balance checks need the 2xx count exactly.
local ids_file = os.getenv("WL_IDS")
local method = os.getenv("WL_METHOD") or "GET"
local path_template = os.getenv("WL_PATH")
local body = os.getenv("WL_BODY") or ""
local out_file = os.getenv("WL_OUT")

local threads = {}
local paths, headers

function setup(thread)
  table.insert(threads, thread)
  thread:set("number", #threads)
end

function init(args)
  paths = {}
  for id in io.lines(ids_file) do
    if #id > 0 then
      paths[#paths + 1] = (path_template:gsub("{id}", id))
    end
  end
  headers = {}
  if body ~= "" then
    headers["Content-Type"] = "application/json"
  else
    body = nil
  end
  math.randomseed((tonumber(os.getenv("WL_SEED")) or os.time()) + number * 7919)
  sent, s2xx, s4xx, s5xx, sother = 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local path = #paths == 1 and paths[1] or paths[math.random(#paths)]
  return wrk.format(method, path, headers, body)
end

function response(status, response_headers, response_body)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  else
    sother = sother + 1
  end
end

function done(summary, latency, requests)
  local total = { sent = 0, s2xx = 0, s4xx = 0, s5xx = 0, sother = 0 }
  for _, thread in ipairs(threads) do
    for key in pairs(total) do
      total[key] = total[key] + (thread:get(key) or 0)
    end
  end
  local errors, out = summary.errors, io.open(out_file, "w")
  out:write(string.format(
    '{"duration_us":%d,"requests":%d,"sent":%d,"s2xx":%d,"s4xx":%d,"s5xx":%d,"sother":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.duration, summary.requests, total.sent, total.s2xx, total.s4xx, total.s5xx,
    total.sother, errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
  out:close()
end
