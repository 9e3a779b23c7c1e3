-- Drop a channel's expired presence entries, then return the live ones.
--
-- KEYS[1] data      HASH client id -> ClientInfo JSON
-- KEYS[2] expiry    ZSET client id scored by the unix time its entry expires
-- ARGV[1] the current unix time (seconds): entries expiring at or before it go
--
-- Returns HGETALL of the data hash: {client id, info, client id, info, ...}.

local data_key, expiry_key = KEYS[1], KEYS[2]

local expired = redis.call('ZRANGEBYSCORE', expiry_key, '-inf', ARGV[1])
for first = 1, #expired, 1000 do
  redis.call('HDEL', data_key, unpack(expired, first, math.min(first + 999, #expired)))
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', expiry_key, '-inf', ARGV[1])
end
return redis.call('HGETALL', data_key)
