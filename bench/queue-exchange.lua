-- wrk script of `npm run bench -- queue`, phase admission_exchange: every
-- request exchanges one admitted fan's lobby ticket for an admission token,
-- with that fan's session, each pair once.
-- Arguments (after `--`): pairs file ("<session> <ticket>" a line), request
-- path, thread count. Thread k of n takes lines k, k+n, ...; a thread out of
-- pairs prints BENCH_THREAD_DONE; done() prints BENCH_RESULT + JSON.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, thread_count = args[1], tonumber(args[3])
  path = args[2]
  sessions, tickets, lines = {}, {}, {}
  local line = 0
  for text in io.lines(file) do
    if line % thread_count == index then
      local session, ticket = text:match("^(%S+) (%S+)$")
      sessions[#sessions + 1] = session
      tickets[#tickets + 1] = ticket
      lines[#lines + 1] = line
    end
    line = line + 1
  end
  sent = 0
  exhausted = 0
  admitted, not_admitted_yet, sold_out, unauthorized, conflict, server_error, other = 0, 0, 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local session = sessions[sent]
  if session == nil then
    if exhausted == 0 then
      exhausted = 1
      io.write("BENCH_THREAD_DONE\n")
      io.flush()
      wrk.thread:stop()
    end
    return wrk.format("GET", "/api/health")
  end
  -- A crowd comes from many addresses (the admission step is rate limited per IP): 10.a.b.c per line, as in the lobby.
  local line = lines[sent]
  local ip = string.format("10.%d.%d.%d", math.floor(line / 65536) % 256, math.floor(line / 256) % 256, line % 256)
  return wrk.format("POST", path, {
    ["Authorization"] = "Bearer " .. session,
    ["Content-Type"] = "application/json",
    ["CF-Connecting-IP"] = ip,
  }, '{"ticket":"' .. tickets[sent] .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    if body:find('"token":"', 1, true) then admitted = admitted + 1 elseif exhausted == 0 then other = other + 1 end
  elseif status == 409 and body:find('"not_admitted_yet"', 1, true) then
    not_admitted_yet = not_admitted_yet + 1
  elseif status == 409 and body:find('"sold_out"', 1, true) then
    sold_out = sold_out + 1
  elseif status == 409 then
    conflict = conflict + 1
  elseif status == 401 then
    unauthorized = unauthorized + 1
  elseif status >= 500 then
    server_error = server_error + 1
  else
    other = other + 1
  end
end

local counters = { "admitted", "not_admitted_yet", "sold_out", "unauthorized", "conflict", "server_error", "other", "exhausted" }

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
