-- Forget one client's presence in a channel (idempotent).
--
-- KEYS[1] data      HASH client id -> ClientInfo JSON
-- KEYS[2] expiry    ZSET client id scored by the unix time its entry expires
-- ARGV[1] client id

redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
