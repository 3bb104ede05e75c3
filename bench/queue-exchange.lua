-- wrk script of `npm run bench -- queue`, phase admission_exchange: every
-- request exchanges one admitted fan's lobby ticket for an admission token,
-- with that fan's session, each pair once.
-- Arguments (after `--`): pairs file ("<session> <ticket>" a line), request
-- path, thread count. Each thread takes its share of the file
-- (lib/crowd.lua) and stops once it has run out; done() prints BENCH_RESULT + JSON.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/?.lua;" .. package.path
local crowd = require("crowd")

-- Answers other than 200: status, counter and, for a 409, the error code its body names (any other 409 is a conflict).
local outcomes = { { 409, "not_admitted_yet", '"not_admitted_yet"' }, { 409, "sold_out", '"sold_out"' }, { 409, "conflict" }, { 401, "unauthorized" } }
local path

crowd.run({
  outcomes = outcomes,
  counters = { "admitted", "exhausted" },
  init = function(args)
    crowd.share(args[1], tonumber(args[3]))
    path = args[2]
  end,
  request = function()
    local pair, line = crowd.take()
    if pair == nil then return crowd.idle_request() end
    local session, ticket = pair:match("^(%S+) (%S+)$")
    -- A crowd comes from many addresses (the admission step is rate limited per IP), as in the lobby.
    local headers = { ["Authorization"] = "Bearer " .. session, ["Content-Type"] = "application/json", ["CF-Connecting-IP"] = crowd.address(line) }
    return wrk.format("POST", path, headers, '{"ticket":"' .. ticket .. '"}')
  end,
  response = function(status, headers, body)
    if status ~= 200 then
      crowd.count(outcomes, status, body)
    elseif body:find('"token":"', 1, true) then
      admitted = admitted + 1
    elseif exhausted == 0 then
      other = other + 1 -- (after running out, a 200 without a token answers the health check)
    end
  end,
})
