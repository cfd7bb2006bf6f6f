/**
 * The Lua scripts of the Redis history store. Each runs atomically in Redis, which is what makes an
 * offset unique across nodes: the counter is advanced, the publication stored and (optionally)
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
 * Publish a batch: several publications to one room, in order, in one atomic step (so a busy room
 * costs one round trip per batch, not per publication). ARGV: [1] new epoch, [2] ttl, [3] size,
 * [4] how many publications; then per publication: type, "1" when data follows, data, relay channel
 * ("" for none), the relay's slot count S, and when relayed its segments and slots alternating
 * (segment, slot, …, segment: 2S + 1 values, a slot being "o" or "e").
 * Returns { first offset of the batch, epoch }: the batch's offsets follow each other.
 */
export const PUBLISH_SCRIPT = `${HEAD}
local size, count = ARGV[3], tonumber(ARGV[4])
local expires = string.format('%d', now + ttl * 1000)
local first = offset + 1
local i = 5
for _ = 1, count do
  offset = offset + 1
  local id = string.format('%d', offset)
  if ARGV[i + 1] == '1' then
    redis.call('XADD', stream, 'MAXLEN', size, id .. '-0', 'y', ARGV[i], 'x', expires, 'd', ARGV[i + 2])
  else
    redis.call('XADD', stream, 'MAXLEN', size, id .. '-0', 'y', ARGV[i], 'x', expires)
  end
  local channel, slots = ARGV[i + 3], tonumber(ARGV[i + 4])
  i = i + 5
  if channel ~= '' then
    local parts = {}
    for k = 0, 2 * slots do
      local value = ARGV[i + k]
      if k % 2 == 1 then
        if value == 'o' then value = id else value = epoch end
      end
      parts[#parts + 1] = value
    end
    redis.call('SPUBLISH', channel, table.concat(parts))
    i = i + 2 * slots + 1
  end
end
redis.call('HSET', meta, 'o', string.format('%d', offset))
redis.call('EXPIRE', stream, ttl)
return { first, epoch }
`;

/**
 * Read. ARGV: [1] new epoch, [2] ttl, [3] what to read: "position" (nothing), "after" (from the stream
 * id ARGV[4] on, computed by the caller), "latest" (the last ARGV[4] entries, "0" for all).
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
