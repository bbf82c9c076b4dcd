-- wrk script of perf/wallet_load.py, configured through WL_* environment variables:
--   WL_IDS     file of wallet ids, one a line; each request picks one at random
--   WL_METHOD  GET or POST;  WL_PATH  path, where {id} is the picked id
--   WL_BODY    request body (may be empty), where {from} is the picked id and {to} another
--              id of the file, picked at random per request too (a transfer: payer, payee)
--   WL_TRACK   a JSON key (may be empty): each 2xx answer's string under it is counted, e.g.
--              the payer of each transfer acknowledged, for a check payer by payer
--   WL_OUT     where done() writes one JSON object: status counts, socket errors, latency
--              (and "tracked": the counts by WL_TRACK's value)
--   WL_SEED    random seed (distinct per wrk process; wrk threads add their own number)
--   WL_FOLLOW  a path (may be empty) where {id} is the "id" of a 201 answer: each 201's
--              id is queued, and the thread's next request POSTs to its path (empty body)
--              instead of the usual one, e.g. the capture of each hold placed
-- Status classes are counted per thread and summed in done(): wrk's own summary knows only
-- "non-2xx or 3xx", and the balance checks need the 2xx count exactly.
local ids_file = os.getenv("WL_IDS")
local method = os.getenv("WL_METHOD") or "GET"
local path_template = os.getenv("WL_PATH")
local body = os.getenv("WL_BODY") or ""
local out_file = os.getenv("WL_OUT")
local track = os.getenv("WL_TRACK") or ""
local track_pattern = '"' .. track .. '"%s*:%s*"([^"]*)"'
local follow = os.getenv("WL_FOLLOW") or ""
local created_pattern = '^{"id"%s*:%s*"([^"]*)"'

local threads = {}
local ids, paths, headers
-- A body with placeholders, cut at them: literal pieces, and in `slots` the positions of
-- the pieces that are filled per request ("from" or "to"); nil for a constant body.
local pieces, slots

function setup(thread)
  table.insert(threads, thread)
  thread:set("number", #threads)
end

local function cut(template)
  local parts, marks, at = {}, {}, 1
  while true do
    local first, last, name = template:find("{(%a+)}", at)
    while first and name ~= "from" and name ~= "to" do  -- JSON's own braces stay literal
      first, last, name = template:find("{(%a+)}", last + 1)
    end
    if not first then
      break
    end
    parts[#parts + 1] = template:sub(at, first - 1)
    parts[#parts + 1] = name
    marks[#parts] = name
    at = last + 1
  end
  if next(marks) == nil then
    return nil, nil
  end
  parts[#parts + 1] = template:sub(at)
  return parts, marks
end

function init(args)
  ids, paths = {}, {}
  local per_id = path_template:find("{id}", 1, true) ~= nil
  for id in io.lines(ids_file) do
    if #id > 0 then
      ids[#ids + 1] = id
      paths[#ids] = per_id and (path_template:gsub("{id}", id)) or path_template
    end
  end
  headers = {}
  if body ~= "" then
    headers["Content-Type"] = "application/json"
    pieces, slots = cut(body)
  else
    body = nil
  end
  math.randomseed((tonumber(os.getenv("WL_SEED")) or os.time()) + number * 7919)
  sent, s2xx, s4xx, s5xx, sother, s201, followed = 0, 0, 0, 0, 0, 0, 0
  tracked = {}
  queued, first, last = {}, 1, 0  -- ids of 201 answers still to follow, oldest first
end

function request()
  sent = sent + 1
  if first <= last then
    local id = queued[first]
    queued[first], first = nil, first + 1
    followed = followed + 1
    return wrk.format("POST", (follow:gsub("{id}", id)))
  end
  local count = #ids
  local i = count == 1 and 1 or math.random(count)
  if not pieces then
    return wrk.format(method, paths[i], headers, body)
  end
  local other = 1
  if count > 1 then  -- another id than the picked one, uniformly
    other = math.random(count - 1)
    if other >= i then
      other = other + 1
    end
  end
  for position, name in pairs(slots) do
    pieces[position] = name == "from" and ids[i] or ids[other]
  end
  return wrk.format(method, paths[i], headers, table.concat(pieces))
end

function response(status, response_headers, response_body)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
    if status == 201 then
      s201 = s201 + 1
      local id = follow ~= "" and response_body:match(created_pattern)
      if id then
        last = last + 1
        queued[last] = id
      end
    end
    if track ~= "" then
      local value = response_body:match(track_pattern)
      if value then
        tracked[value] = (tracked[value] or 0) + 1
      end
    end
  elseif status >= 500 then
    s5xx = s5xx + 1
  elseif status >= 400 then
    s4xx = s4xx + 1
  else
    sother = sother + 1
  end
end

function done(summary, latency, requests)
  local total = { sent = 0, s2xx = 0, s4xx = 0, s5xx = 0, sother = 0, s201 = 0, followed = 0 }
  local counted, entries = {}, {}
  for _, thread in ipairs(threads) do
    for key in pairs(total) do
      total[key] = total[key] + (thread:get(key) or 0)
    end
    for value, count in pairs(thread:get("tracked") or {}) do
      counted[value] = (counted[value] or 0) + count
    end
  end
  for value, count in pairs(counted) do
    entries[#entries + 1] = string.format("%q:%d", value, count)
  end
  local errors, out = summary.errors, io.open(out_file, "w")
  out:write(string.format(
    '{"duration_us":%d,"requests":%d,"sent":%d,"s2xx":%d,"s4xx":%d,"s5xx":%d,"sother":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"s201":%d,"followed":%d,"tracked":{%s}}\n',
    summary.duration, summary.requests, total.sent, total.s2xx, total.s4xx, total.s5xx,
    total.sother, errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    total.s201, total.followed, table.concat(entries, ",")))
  out:close()
end
