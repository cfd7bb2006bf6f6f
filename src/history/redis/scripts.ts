/**
 * The Lua scripts of the Redis history store. Each runs atomically in Redis, which is what makes an
 * offset unique across nodes: the counter is incremented, the publication stored and (optionally)
 * relayed to the room's channel in one step, so no other publication can come between.
 *
 * Keys of one room (both carry the room's hash tag, so they share a slot on Redis Cluster):
 * - KEYS[1] the meta hash: `e` the epoch, `o` the latest offset;
 * - KEYS[2] the stream: entry id `<offset>-0`, fields `y` type, `x` expiry (ms), `d` data JSON (when any).
 *
 * Time comes from Redis (`TIME`), so every node judges expiry by one clock.
 *
 * @module
 */

/**
 * Shared head: loads the meta hash, or starts a new epoch (ARGV[1]) when the room's keys are gone —
 * expired, deleted or lost with Redis — dropping any stream left from the lost epoch; then refreshes
 * both keys' ttl (ARGV[2] seconds). Leaves `epoch`, `offset` and `now` (ms) in locals.
 */
const HEAD = `
local meta, stream = KEYS[1], KEYS[2]
local epoch, offset = unpack(redis.call('HMGET', meta, 'e', 'o'))
if not epoch then
  epoch, offset = ARGV[1], 0
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0)
end
offset = tonumber(offset)
local ttl = tonumber(ARGV[2])
redis.call('EXPIRE', meta, ttl)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`;

/**
 * Publish. ARGV: [1] new epoch, [2] ttl, [3] size, [4] type, [5] "1" when data follows, [6] data,
 * [7] relay channel ("" for none), then the relay's segments and slots alternating: segment, slot,
 * segment, …, segment (a slot is "o" or "e").
 * Returns { offset, epoch }.
 */
export const PUBLISH_SCRIPT = `${HEAD}
offset = redis.call('HINCRBY', meta, 'o', 1)
local expires = now + ttl * 1000
if ARGV[5] == '1' then
  redis.call('XADD', stream, 'MAXLEN', ARGV[3], offset .. '-0', 'y', ARGV[4], 'x', expires, 'd', ARGV[6])
else
  redis.call('XADD', stream, 'MAXLEN', ARGV[3], offset .. '-0', 'y', ARGV[4], 'x', expires)
end
redis.call('EXPIRE', stream, ttl)
if ARGV[7] ~= '' then
  local parts = {}
  for i = 8, #ARGV do
    if (i - 8) % 2 == 0 then
      parts[#parts + 1] = ARGV[i]
    elseif ARGV[i] == 'o' then
      parts[#parts + 1] = tostring(offset)
    else
      parts[#parts + 1] = epoch
    end
  end
  redis.call('SPUBLISH', ARGV[7], table.concat(parts))
end
return { offset, epoch }
`;

/**
 * Read. ARGV: [1] new epoch, [2] ttl, [3] what to read: "position" (nothing), "after" (from the stream
 * id ARGV[4] on, computed by the caller: Lua prints large numbers in exponent form), "latest" (the last ARGV[4] entries, "0" for all).
 * Returns { offset, epoch, now, entries } with entries oldest first, as XRANGE gives them.
 */
export const READ_SCRIPT = `${HEAD}
redis.call('EXPIRE', stream, ttl)
local entries = {}
local mode, arg = ARGV[3], ARGV[4]
if mode == 'after' then
  entries = redis.call('XRANGE', stream, arg, '+')
elseif mode == 'latest' then
  if arg == '0' then
    entries = redis.call('XRANGE', stream, '-', '+')
  else
    local newest = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', arg)
    for i = #newest, 1, -1 do entries[#entries + 1] = newest[i] end
  end
end
return { offset, epoch, tostring(now), entries }
`;
