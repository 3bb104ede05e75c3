-- What the wrk scripts of `npm run bench` share. A script loads it with
--   package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/?.lua;" .. package.path
--   local crowd = require("crowd")
-- and hands crowd.run() what is its own. wrk runs setup() and done() in its
-- main Lua state and init(), request() and response() in a state of each
-- thread; counters are globals of the thread's state, which done() sums with
-- thread:get().
local crowd = {}

-- The threads, in the main state (setup() and done()).
local threads = {}
-- This thread's items (its share of the input file), their line numbers, and how many it took.
local items, lines, taken = {}, {}, 0
local stopped = false

-- setup(): numbers the threads 0, 1, ... (their global `index`).
function crowd.setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

-- init(): this thread's share of `file`, lines k, k+n, k+2n, ... for thread k
-- of n, so no line is sent by two threads. Sets the global counter
-- `exhausted` (1 once the share has run out).
function crowd.share(file, thread_count)
  local line = 0
  for text in io.lines(file) do
    if line % thread_count == index then
      items[#items + 1] = text
      lines[#lines + 1] = line
    end
    line = line + 1
  end
  exhausted = 0
end

-- The counters of a script: those of its `outcomes` (see crowd.count), then
-- server_error and other, then `extra`.
function crowd.counters(outcomes, extra)
  local names, seen = {}, {}
  local function add(name)
    if not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  for _, outcome in ipairs(outcomes) do add(outcome[2]) end
  add("server_error")
  add("other")
  for _, name in ipairs(extra or {}) do add(name) end
  return names
end

-- init(): sets each of `counters` (globals of this thread) to 0.
function crowd.zero(counters)
  for _, name in ipairs(counters) do _G[name] = 0 end
end

-- response(): counts an answer under the first of `outcomes` ({ status,
-- counter, marker }: the status, and a string the body must contain when
-- given) that it matches; else under `server_error` (5xx) or `other`, and
-- the first such answer of each kind a thread gets is printed (its status
-- and the start of its body), so a run that fails says why: Miniflare does
-- not show workerd's own 500s. Returns the counter's name.
local sampled = {}
function crowd.count(outcomes, status, body)
  local name = status >= 500 and "server_error" or "other"
  for _, outcome in ipairs(outcomes) do
    if status == outcome[1] and (outcome[3] == nil or body:find(outcome[3], 1, true)) then
      name = outcome[2]
      break
    end
  end
  _G[name] = (_G[name] or 0) + 1
  if (name == "server_error" or name == "other") and not sampled[name] then
    sampled[name] = true
    local start = (string.sub(body or "", 1, 300):gsub("%s+", " "))
    io.write(string.format("unexpected answer (%s): %d %s\n", name, status, start))
  end
  return name
end

-- This thread's next line of its share and its line number in the file; nil
-- once the share has run out (the thread is then stopped).
function crowd.take()
  taken = taken + 1
  local item = items[taken]
  if item == nil then
    exhausted = 1
    crowd.stop_thread()
  end
  return item, lines[taken]
end

-- Stops this thread for good, and says so once (BENCH_THREAD_DONE): wrk
-- itself only ends at -d, so the caller interrupts it once every thread has.
function crowd.stop_thread()
  if stopped then return end
  stopped = true
  io.write("BENCH_THREAD_DONE\n")
  io.flush()
  wrk.thread:stop()
end

-- What a stopped thread sends if wrk asks it for one more request (not counted).
function crowd.idle_request()
  return wrk.format("GET", "/api/health")
end

-- 10.a.b.c: a client address of its own for each line (up to 16M lines).
function crowd.address(line)
  return string.format("10.%d.%d.%d", math.floor(line / 65536) % 256, math.floor(line / 256) % 256, line % 256)
end

-- done(): one line, "BENCH_RESULT " and a JSON object: each of `counters`
-- summed over the threads, then wrk's own figures.
function crowd.report(counters, summary, latency)
  local fields = {}
  for _, name in ipairs(counters) do
    local total = 0
    for _, thread in ipairs(threads) do total = total + (thread:get(name) or 0) end
    fields[#fields + 1] = string.format('"%s":%d', name, total)
  end
  local errors = summary.errors
  fields[#fields + 1] = string.format('"threads":%d', #threads)
  fields[#fields + 1] = string.format('"duration_us":%.0f', summary.duration)
  fields[#fields + 1] = string.format('"requests":%.0f', summary.requests)
  fields[#fields + 1] = string.format('"socket_errors":%.0f', errors.connect + errors.read + errors.write)
  fields[#fields + 1] = string.format('"timeouts":%.0f', errors.timeout)
  fields[#fields + 1] = string.format('"p50_us":%.0f', latency:percentile(50))
  fields[#fields + 1] = string.format('"p99_us":%.0f', latency:percentile(99))
  fields[#fields + 1] = string.format('"max_us":%.0f', latency.max)
  io.write("BENCH_RESULT {" .. table.concat(fields, ",") .. "}\n")
end

-- Defines wrk's functions for a script that counts answers:
--   outcomes        how answers are counted (crowd.count)
--   counters        counters of its own (globals it increments), besides those of outcomes
--   init(args)      its start, once the counters are zeroed
--   request()       the next request
--   response(...)   optional: counts an answer itself (default: crowd.count with outcomes)
-- done() prints every counter (crowd.report).
function crowd.run(script)
  local counters = crowd.counters(script.outcomes, script.counters)
  setup = crowd.setup
  init = function(args)
    crowd.zero(counters)
    if script.init then script.init(args) end
  end
  request = script.request
  response = script.response or function(status, headers, body)
    crowd.count(script.outcomes, status, body)
  end
  done = function(summary, latency)
    crowd.report(counters, summary, latency)
  end
end

return crowd
