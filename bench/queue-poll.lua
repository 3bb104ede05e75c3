-- wrk script of `npm run bench -- queue`, phase queue_poll: every request
-- polls the published queue state of one event, as waiting fans do. Also
-- the baseline of `npm run bench -- holds`: GETs a route that does no I/O.
-- Arguments (after `--`): request path. done() prints BENCH_RESULT + JSON.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  req = wrk.format("GET", args[1])
  ok, not_found, server_error, other = 0, 0, 0, 0
end

function request()
  return req
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  elseif status == 404 then
    not_found = not_found + 1
  elseif status >= 500 then
    server_error = server_error + 1
  else
    other = other + 1
  end
end

local counters = { "ok", "not_found", "server_error", "other" }

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
