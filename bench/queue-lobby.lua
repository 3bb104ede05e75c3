-- wrk script of `npm run bench -- queue`, phase lobby_join: every request joins
-- the lobby with a fan session never used before, from an IP and a device of
-- its own (so the per-IP, per-account and per-device defenses never trigger),
-- with Turnstile's always-pass test token.
--
-- Arguments (after `--`): sessions file (one token a line), request path,
-- thread count, tickets file prefix, Turnstile token.
-- Each thread takes its share of the file (lib/crowd.lua) and writes each
-- ticket it gets to "<prefix><k>.txt", one a line. wrk does not say which
-- request a response answers, so the caller pairs tickets with sessions by
-- the account each ticket names (its JWT subject).
-- A thread stops once out of sessions; done() prints BENCH_RESULT + JSON.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/?.lua;" .. package.path
local crowd = require("crowd")

-- Answers other than 200, by status.
local outcomes = { { 429, "too_fast" }, { 400, "bad_request" }, { 401, "unauthorized" }, { 409, "conflict" }, { 403, "conflict" } }
local path, turnstile, out

crowd.run({
  outcomes = outcomes,
  counters = { "joined", "rejoined", "no_ticket", "exhausted" },
  init = function(args)
    crowd.share(args[1], tonumber(args[3]))
    path, turnstile = args[2], args[5]
    out = assert(io.open(args[4] .. index .. ".txt", "w"))
  end,
  request = function()
    local token, line = crowd.take()
    if token == nil then return crowd.idle_request() end
    local body = '{"turnstileToken":"' .. turnstile .. '","deviceId":"bench-device-' .. line .. '"}'
    local headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json", ["CF-Connecting-IP"] = crowd.address(line), ["User-Agent"] = "edge-tickets-bench/" .. line }
    return wrk.format("POST", path, headers, body)
  end,
  response = function(status, headers, body)
    if status ~= 200 then return crowd.count(outcomes, status, body) end
    local ticket = body:match('"ticket":"([^"]+)"')
    if ticket == nil then
      -- the health check sent after running out of sessions is not a join
      if exhausted == 0 then no_ticket = no_ticket + 1 end
      return
    end
    out:write(ticket, "\n")
    out:flush()
    if body:find('"rejoined":true', 1, true) then rejoined = rejoined + 1 else joined = joined + 1 end
  end,
})
