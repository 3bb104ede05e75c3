-- wrk script of `npm run bench -- queue`, phase lobby_join: every request joins
-- the lobby with a fan session never used before, from an IP and a device of
-- its own (so the per-IP, per-account and per-device defenses never trigger),
-- with Turnstile's always-pass test token.
--
-- Arguments (after `--`): sessions file (one token a line), request path,
-- thread count, tickets file prefix, Turnstile token.
-- Thread k of n takes the file's lines k, k+n, ... and writes each ticket it
-- gets to "<prefix><k>.txt", one a line. wrk does not say which request a
-- response answers, so the caller pairs tickets with sessions by the account
-- each ticket names (its JWT subject).
-- A thread out of sessions prints BENCH_THREAD_DONE; done() prints
-- BENCH_RESULT followed by JSON.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, thread_count = args[1], tonumber(args[3])
  path, turnstile = args[2], args[5]
  out = assert(io.open(args[4] .. index .. ".txt", "w"))
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
  joined, rejoined, too_fast, bad_request, unauthorized, conflict, server_error, other, no_ticket = 0, 0, 0, 0, 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local token = tokens[sent]
  if token == nil then
    if exhausted == 0 then
      exhausted = 1
      io.write("BENCH_THREAD_DONE\n")
      io.flush()
      wrk.thread:stop()
    end
    return wrk.format("GET", "/api/health")
  end
  local line = lines[sent]
  -- 10.a.b.c: a distinct address per line (up to 16M lines).
  local ip = string.format("10.%d.%d.%d", math.floor(line / 65536) % 256, math.floor(line / 256) % 256, line % 256)
  local body = '{"turnstileToken":"' .. turnstile .. '","deviceId":"bench-device-' .. line .. '"}'
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["CF-Connecting-IP"] = ip,
    ["User-Agent"] = "edge-tickets-bench/" .. line,
  }, body)
end

function response(status, headers, body)
  if status == 200 then
    local ticket = body:match('"ticket":"([^"]+)"')
    if ticket == nil then
      -- the health check sent after running out of sessions is not a join
      if exhausted == 0 then no_ticket = no_ticket + 1 end
    else
      out:write(ticket, "\n")
      out:flush()
      if body:find('"rejoined":true', 1, true) then rejoined = rejoined + 1 else joined = joined + 1 end
    end
  elseif status == 429 then
    too_fast = too_fast + 1
  elseif status == 400 then
    bad_request = bad_request + 1
  elseif status == 401 then
    unauthorized = unauthorized + 1
  elseif status == 409 or status == 403 then
    conflict = conflict + 1
  elseif status >= 500 then
    server_error = server_error + 1
  else
    other = other + 1
  end
end

local counters = { "joined", "rejoined", "too_fast", "bad_request", "unauthorized", "conflict", "server_error", "other", "no_ticket", "exhausted" }

function done(summary, latency, requests)
  local fields = {}
  for _, name in ipairs(counters) do
    local total = 0
    for _, thread in ipairs(threads) do total = total + (thread:get(name) or 0) end
    fields[#fields + 1] = string.format('"%s":%d', name, total)
  end
  local errors = summary.errors
  fields[#fields + 1] = string.format('"duration_us":%.0f', summary.duration)
  fields[#fields + 1] = string.format('"requests":%.0f', summary.requests)
  fields[#fields + 1] = string.format('"socket_errors":%.0f', errors.connect + errors.read + errors.write)
  fields[#fields + 1] = string.format('"timeouts":%.0f', errors.timeout)
  fields[#fields + 1] = string.format('"p50_us":%.0f', latency:percentile(50))
  fields[#fields + 1] = string.format('"p99_us":%.0f', latency:percentile(99))
  fields[#fields + 1] = string.format('"max_us":%.0f', latency.max)
  io.write("BENCH_RESULT {" .. table.concat(fields, ",") .. "}\n")
end
