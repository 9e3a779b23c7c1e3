-- Read a channel's stream position and, optionally, publications from its history.
--
-- KEYS[1] stream    the channel's history (a Redis Stream, entry id = offset)
-- KEYS[2] meta      the channel's stream position: HASH e = epoch, s = top offset
-- ARGV[1] the epoch to start when the channel has no stream position
--         ("": start none and return {0, ""})
-- ARGV[2] stream position TTL in milliseconds for a position started here (0: none)
-- ARGV[3] read publications strictly after (or, reversed, before) this offset;
--         "" reads from the oldest (or, reversed, the newest)
-- ARGV[4] how many publications to read: 0 none, < 0 all
-- ARGV[5] "1" reads newest first
--
-- Returns {top offset, epoch, entries}; entries as XRANGE returns them.

local stream_key, meta_key = KEYS[1], KEYS[2]
local new_epoch, meta_ttl = ARGV[1], tonumber(ARGV[2])
local since, limit, reverse = ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'

local meta = redis.call('HMGET', meta_key, 'e', 's')
local epoch, top = meta[1], tonumber(meta[2]) or 0
if not epoch then
  if new_epoch == '' then
    return {0, ''}
  end
  epoch = new_epoch
  redis.call('HSET', meta_key, 'e', epoch)
  if meta_ttl > 0 then
    redis.call('PEXPIRE', meta_key, meta_ttl)
  end
end
if limit == 0 then
  return {top, epoch}
end

local entries
if reverse then
  local high = '+'
  if since ~= '' then high = '(' .. since .. '-0' end
  if limit > 0 then
    entries = redis.call('XREVRANGE', stream_key, high, '-', 'COUNT', limit)
  else
    entries = redis.call('XREVRANGE', stream_key, high, '-')
  end
else
  local low = '-'
  if since ~= '' then low = '(' .. since .. '-0' end
  if limit > 0 then
    entries = redis.call('XRANGE', stream_key, low, '+', 'COUNT', limit)
  else
    entries = redis.call('XRANGE', stream_key, low, '+')
  end
end
return {top, epoch, entries}
