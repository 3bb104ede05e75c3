-- wrk script of `npm run bench -- queue`, phase queue_poll: every request
-- polls the published queue state of one event, as waiting fans do. Also
-- the baseline of `npm run bench -- holds`: GETs a route that does no I/O.
-- Arguments (after `--`): request path. done() prints BENCH_RESULT + JSON.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "lib/?.lua;" .. package.path
local crowd = require("crowd")

local poll

crowd.run({
  outcomes = { { 200, "ok" }, { 404, "not_found" } },
  init = function(args)
    poll = wrk.format("GET", args[1])
  end,
  request = function()
    return poll
  end,
})
