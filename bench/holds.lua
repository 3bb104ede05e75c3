-- wrk script of `npm run bench -- holds`: every request holds the best seats
-- with a fan token never used before (one attempt per token per 5 s, and at
-- most 4 seats per account), and a request id of its own.
--
-- Arguments (after `--`): tokens file, request path, thread count,
-- request-id prefix, consecutive sold_out answers after which a thread stops,
-- seats per hold.
-- Thread k of n takes the file's lines k, k+n, k+2n, ... so no token is sent twice.
-- A thread that stops (sold out, or out of tokens) prints THREAD_DONE_MARKER:
-- wrk itself only ends at -d, so the caller interrupts it once every thread has.
-- done() prints one line: RESULT_MARKER followed by JSON.

local function stop_thread()
  io.write("BENCH_THREAD_DONE\n")
  io.flush()
  wrk.thread:stop()
end

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, thread_count = args[1], tonumber(args[3])
  path, prefix, stop_after, quantity = args[2], args[4], tonumber(args[5]), args[6]
  tokens, lines = {}, {}
  local line = 0
  for token in io.lines(file) do
    if line % thread_count == index then
      tokens[#tokens + 1] = token
      lines[#lines + 1] = line
    end
    line = line + 1
  end
  sent = 0
  exhausted = 0
  stopped_sold_out = 0
  sold_out_streak = 0
  held, sold_out, seat_taken, over_limit, too_fast, unauthorized, server_error, other = 0, 0, 0, 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local token = tokens[sent]
  if token == nil then
    -- Out of fresh tokens: stop this thread (the request below is not counted).
    exhausted = 1
    stop_thread()
    return wrk.format("GET", "/api/health")
  end
  local body = '{"requestId":"' .. prefix .. lines[sent] .. '","quantity":' .. quantity .. '}'
  return wrk.format("POST", path, { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if exhausted == 1 and status == 200 then return end
  if status == 201 then
    held = held + 1
    sold_out_streak = 0
  elseif status == 409 and body:find('"sold_out"', 1, true) then
    sold_out = sold_out + 1
    sold_out_streak = sold_out_streak + 1
    if sold_out_streak >= stop_after and stopped_sold_out == 0 then
      stopped_sold_out = 1
      stop_thread()
    end
  elseif status == 409 and body:find('"seat_taken"', 1, true) then
    seat_taken = seat_taken + 1
  elseif status == 409 and body:find('"over_limit"', 1, true) then
    over_limit = over_limit + 1
  elseif status == 429 then
    too_fast = too_fast + 1
  elseif status == 401 then
    unauthorized = unauthorized + 1
  elseif status >= 500 then
    server_error = server_error + 1
  else
    other = other + 1
  end
end

local counters = { "held", "sold_out", "seat_taken", "over_limit", "too_fast", "unauthorized", "server_error", "other", "stopped_sold_out", "exhausted" }

function done(summary, latency, requests)
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
