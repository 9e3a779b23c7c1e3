-- Publish one publication: idempotency check, history append and fan-out in one step.
--
-- KEYS[1] stream    the channel's history (a Redis Stream, entry id = offset)
-- KEYS[2] meta      the channel's stream position: HASH e = epoch, s = top offset
-- KEYS[3] result    the idempotent result of this publish: HASH o = offset, e = epoch
-- ARGV[1] the node-level pub/sub channel to PUBLISH to
-- ARGV[2] the publication, JSON without its offset
-- ARGV[3] history size (0: no history)
-- ARGV[4] history TTL in milliseconds
-- ARGV[5] stream position TTL in milliseconds (0: the position never expires)
-- ARGV[6] the epoch to start when the channel has no stream position
-- ARGV[7] idempotent result TTL in milliseconds (0: no idempotency key)
--
-- Returns {offset, epoch}: the publication's position ({0, ""} without history).
-- The message published is the JSON array ["p", offset, "epoch", publication].

local stream_key, meta_key, result_key = KEYS[1], KEYS[2], KEYS[3]
local channel, payload = ARGV[1], ARGV[2]
local size, ttl, meta_ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local new_epoch, result_ttl = ARGV[6], tonumber(ARGV[7])

if result_ttl > 0 then
  local seen = redis.call('HMGET', result_key, 'o', 'e')
  if seen[1] then
    return {tonumber(seen[1]), seen[2]}
  end
end

local offset, epoch = 0, ''
if size > 0 then
  epoch = redis.call('HGET', meta_key, 'e')
  if not epoch then
    epoch = new_epoch
    redis.call('HSET', meta_key, 'e', epoch)
  end
  offset = redis.call('HINCRBY', meta_key, 's', 1)
  if meta_ttl > 0 then
    redis.call('PEXPIRE', meta_key, meta_ttl)
  end
  if offset == 1 then
    -- a new stream position: whatever the stream holds belongs to a lost epoch
    redis.call('DEL', stream_key)
  end
  redis.call('XADD', stream_key, 'MAXLEN', size, offset, 'd', payload)
  redis.call('PEXPIRE', stream_key, ttl)
end

redis.call('PUBLISH', channel, '["p",' .. offset .. ',"' .. epoch .. '",' .. payload .. ']')

if result_ttl > 0 then
  redis.call('HSET', result_key, 'o', offset, 'e', epoch)
  redis.call('PEXPIRE', result_key, result_ttl)
end
return {offset, epoch}
