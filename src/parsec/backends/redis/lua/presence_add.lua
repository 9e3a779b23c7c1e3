-- Record (or refresh) one client's presence in a channel.
--
-- KEYS[1] data      HASH client id -> ClientInfo JSON
-- KEYS[2] expiry    ZSET client id scored by the unix time its entry expires
-- ARGV[1] client id
-- ARGV[2] ClientInfo JSON
-- ARGV[3] the unix time (seconds) the entry expires
-- ARGV[4] the entry's TTL in milliseconds: both keys live at least that long

local data_key, expiry_key = KEYS[1], KEYS[2]
local ttl = tonumber(ARGV[4])

redis.call('HSET', data_key, ARGV[1], ARGV[2])
redis.call('ZADD', expiry_key, ARGV[3], ARGV[1])
for _, key in ipairs({data_key, expiry_key}) do
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return 1
