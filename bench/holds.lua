-- wrk script of `npm run bench -- holds`: every request holds the best seats
-- with a fan token never used before (one attempt per token per 5 s, and at
-- most 4 seats per account), and a request id of its own.
--
-- Arguments (after `--`): tokens file, request path, thread count,
-- request-id prefix, consecutive sold_out answers after which a thread stops,
-- seats per hold.
-- Each thread takes its share of the file (lib/crowd.lua); a thread stops
-- once sold out or out of tokens. done() prints one line: BENCH_RESULT + JSON.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/?.lua;" .. package.path
local crowd = require("crowd")

-- An answer's status, its counter and, for a 409, the error code its body names.
local outcomes = { { 201, "held" }, { 409, "sold_out", '"sold_out"' }, { 409, "seat_taken", '"seat_taken"' }, { 409, "over_limit", '"over_limit"' }, { 429, "too_fast" }, { 401, "unauthorized" } }
local path, prefix, stop_after, quantity
local sold_out_streak = 0

crowd.run({
  outcomes = outcomes,
  counters = { "stopped_sold_out", "exhausted" },
  init = function(args)
    crowd.share(args[1], tonumber(args[3]))
    path, prefix, stop_after, quantity = args[2], args[4], tonumber(args[5]), args[6]
  end,
  request = function()
    local token, line = crowd.take()
    if token == nil then return crowd.idle_request() end
    local body = '{"requestId":"' .. prefix .. line .. '","quantity":' .. quantity .. '}'
    return wrk.format("POST", path, { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
  end,
  response = function(status, headers, body)
    if exhausted == 1 and status == 200 then return end -- the health check sent after running out of tokens
    local outcome = crowd.count(outcomes, status, body)
    if outcome == "held" then
      sold_out_streak = 0
    elseif outcome == "sold_out" then
      sold_out_streak = sold_out_streak + 1
      if sold_out_streak >= stop_after and stopped_sold_out == 0 then
        stopped_sold_out = 1
        crowd.stop_thread()
      end
    end
  end,
})
