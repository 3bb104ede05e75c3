-- The seed's reservation script (its "Component 2"), as the reference design
-- of `npm run bench -- holds`: one atomic script per hold, best available from
-- a sorted set, a reservation key per seat with a TTL.
--
-- Fixed where the seed's text is wrong: the seed runs
--   SREM available_seats seat; SET reservation:seat user EX 600 NX; return "RESERVED"
-- and ignores what SET ... NX answered, so a seat someone still holds is
-- reported reserved without a reservation. Here a refused SET NX undoes the
-- hold and refuses it.
--
-- Extended to the contract our inventory keeps, so both do the same work per
-- hold: a retried request id gets its first answer, one attempt per admission
-- token per interval (SET NX PX, honoured too), a purchase limit per account,
-- and best available = the best free seat and the adjacent block around it
-- with the lowest total rank (the seed: "the system assigns the best
-- available seats automatically").
--
-- KEYS[1]  the event's key prefix
-- ARGV     account, attempt key, request id, quantity, hold id, TTL (s),
--          purchase limit, attempt interval (ms), now (ms)
-- Returns  { HTTP status, JSON body }, as the server answers it.
local p = KEYS[1]
local account, attempt, request_id = ARGV[1], ARGV[2], ARGV[3]
local quantity = tonumber(ARGV[4])
local hold_id = ARGV[5]
local ttl = tonumber(ARGV[6])
local limit = tonumber(ARGV[7])
local interval_ms = tonumber(ARGV[8])
local now_ms = tonumber(ARGV[9])

local free = p .. ":free"
local rows = p .. ":row"
local request_key = p .. ":req:" .. account .. ":" .. request_id

local function refuse(status, code)
  return { status, cjson.encode({ error = { code = code, message = code } }) }
end

-- Stores an answer for retries of the same request id.
local function answer(status, body)
  redis.call("SET", request_key, status .. " " .. body, "EX", 86400)
  return { status, body }
end

local prior = redis.call("GET", request_key)
if prior then
  local space = string.find(prior, " ", 1, true)
  return { tonumber(string.sub(prior, 1, space - 1)), string.sub(prior, space + 1) }
end

-- One attempt per admission token per interval: SET NX, and its answer honoured.
if not redis.call("SET", p .. ":attempt:" .. attempt, "1", "PX", interval_ms, "NX") then
  return refuse(429, "too_fast")
end

local used_key = p .. ":used:" .. account
local used = tonumber(redis.call("GET", used_key) or "0")
if used + quantity > limit then
  local refused = refuse(409, "over_limit")
  return answer(refused[1], refused[2])
end

-- Best available: walk the free seats best first; around each, the block of
-- `quantity` adjacent free seats of its row with the lowest total rank.
local chosen, chosen_ranks
local PAGE = 8
local offset = 0
while not chosen do
  local candidates = redis.call("ZRANGE", free, offset, offset + PAGE - 1, "WITHSCORES")
  if #candidates == 0 then break end
  for i = 1, #candidates, 2 do
    local seat = tonumber(candidates[i])
    local row = redis.call("HGET", rows, candidates[i])
    local best_score
    for start = seat - quantity + 1, seat do
      local ranks, score = {}, 0
      for s = start, start + quantity - 1 do
        local rank
        if s == seat then
          rank = candidates[i + 1]
        elseif redis.call("HGET", rows, tostring(s)) == row then
          rank = redis.call("ZSCORE", free, tostring(s))
        end
        if not rank then
          ranks = nil
          break
        end
        ranks[#ranks + 1] = rank
        score = score + tonumber(rank)
      end
      if ranks and (best_score == nil or score < best_score) then
        best_score, chosen, chosen_ranks = score, start, ranks
      end
    end
    if chosen then break end
  end
  offset = offset + PAGE
end
if not chosen then
  local refused = refuse(409, "sold_out")
  return answer(refused[1], refused[2])
end

-- Reserve: the seed's SREM and SET ... NX per seat, each answer honoured.
local seats = {}
for s = chosen, chosen + quantity - 1 do seats[#seats + 1] = s end
for i, s in ipairs(seats) do
  local removed = redis.call("ZREM", free, s)
  local reserved = removed == 1 and redis.call("SET", p .. ":res:" .. s, hold_id, "EX", ttl, "NX")
  if not reserved then
    for j = 1, i do
      if j < i or removed == 1 then redis.call("ZADD", free, chosen_ranks[j], seats[j]) end
      if j < i then redis.call("DEL", p .. ":res:" .. seats[j]) end
    end
    local refused = refuse(409, "seat_taken")
    return answer(refused[1], refused[2])
  end
end
redis.call("SET", p .. ":hold:" .. hold_id, account .. "|" .. table.concat(seats, ","), "EX", ttl)
redis.call("INCRBY", used_key, quantity)
local body = cjson.encode({ hold = { holdId = hold_id, status = "live", expiresAt = now_ms + ttl * 1000, createdAt = now_ms, seats = seats } })
return answer(201, body)
