package redis

import goredis "github.com/redis/go-redis/v9"

// The store's changes and reads are Lua scripts: each runs atomically on
// the server in one round trip, sees a consistent log, and touches only the
// keys it is given, which share the node's hash tag (one cluster slot).
//
// Keys of a node (T is "{prefix:group:node}"):
//
//	T:meta     hash: owner, layout, first, term, vote, commit, snap,
//	           snapidx, snapterm, snapmem, snapchunks, nextsnap
//	T:log      list: the entries from index first on, one element each
//	T:pending  set: IDs of snapshots being written, not yet committed
//	T:snap:ID  list: snapshot ID's chunks, in order
//
// A log element is index (8 bytes, big-endian), term (8 bytes), type (1
// byte) and the data: the scripts read terms at offset 9..16 and sizes as
// the element's length, without decoding. Indexes are Lua numbers
// (doubles): exact up to 2^53.

// luaFence is the ownership check every change starts with.
const luaFence = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
	return redis.error_reply('FENCED node opened by another store')
end
`

// luaBounds loads first and last from the node's meta and log, and defines
// str, which writes a number in full (tostring would use an exponent above
// 10^14).
const luaBounds = `
local function str(n) return string.format('%.0f', n) end
local first = tonumber(redis.call('HGET', KEYS[1], 'first') or '1')
local len = redis.call('LLEN', KEYS[2])
local last = first + len - 1
`

// openScript takes the node's keys over: KEYS meta, pending; ARGV owner,
// layout version. It returns the meta hash flattened, or LAYOUT if the keys
// are newer than this package.
var openScript = goredis.NewScript(`
local layout = tonumber(redis.call('HGET', KEYS[1], 'layout') or '0')
if layout > tonumber(ARGV[2]) then
	return redis.error_reply('LAYOUT ' .. layout)
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'layout', ARGV[2])
redis.call('HSETNX', KEYS[1], 'first', '1')
return redis.call('SMEMBERS', KEYS[2])
`)

// dropPendingScript deletes snapshots a crashed or fenced writer left:
// KEYS meta, pending, chunk lists...; ARGV owner, ids (one per chunk list).
var dropPendingScript = goredis.NewScript(luaFence + `
for i = 3, #KEYS do
	redis.call('DEL', KEYS[i])
	redis.call('SREM', KEYS[2], ARGV[i - 1])
end
return 'OK'
`)

// stateScript returns the meta hash flattened and the log's length.
var stateScript = goredis.NewScript(`
return {redis.call('HGETALL', KEYS[1]), redis.call('LLEN', KEYS[2])}
`)

// saveScript: KEYS meta, log; ARGV owner, has hard state (1/0), term, vote,
// commit, first index of the entries (0: none), encoded entries...
var saveScript = goredis.NewScript(luaFence + `
local n = #ARGV - 6
if n > 0 then
` + luaBounds + `
	local lo = tonumber(ARGV[6])
	if lo < first then
		return redis.error_reply('COMPACTED ' .. str(first))
	end
	if lo > last + 1 then
		return redis.error_reply('GAP ' .. str(last))
	end
	local keep = lo - first
	if keep < len then
		if keep == 0 then
			redis.call('DEL', KEYS[2])
		else
			redis.call('LTRIM', KEYS[2], 0, keep - 1)
		end
	end
	for i = 7, #ARGV, 4000 do
		redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 3999, #ARGV)))
	end
end
if ARGV[2] == '1' then
	redis.call('HSET', KEYS[1], 'term', ARGV[3], 'vote', ARGV[4], 'commit', ARGV[5])
end
return 'OK'
`)

// entriesScript: KEYS meta, log; ARGV lo, hi, maxBytes (0: none), what an
// element's length lacks of its Entry.Size. It returns {'C', first} below
// the log, {'U', last} past it, or {'E', elements...}.
var entriesScript = goredis.NewScript(luaBounds + `
local lo, hi, maxb, extra = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if lo < first then
	return {'C', str(first)}
end
if hi > last + 1 then
	return {'U', str(last)}
end
local out = {'E'}
if lo == hi then
	return out
end
if maxb <= 0 then
	for _, e in ipairs(redis.call('LRANGE', KEYS[2], lo - first, hi - first - 1)) do
		out[#out + 1] = e
	end
	return out
end
local size = 0
local at = lo - first
while at <= hi - first - 1 do
	local batch = redis.call('LRANGE', KEYS[2], at, math.min(at + 127, hi - first - 1))
	for _, e in ipairs(batch) do
		size = size + #e + extra
		if size > maxb and #out > 1 then
			return out
		end
		out[#out + 1] = e
	end
	at = at + #batch
	if #batch == 0 then
		break
	end
end
return out
`)

// termScript: KEYS meta, log; ARGV index. It returns {'T', term bytes} for
// an entry, {'S', term} for the snapshot's index (or 0), or 'C'/'U' as
// entriesScript does.
var termScript = goredis.NewScript(luaBounds + `
local idx = tonumber(ARGV[1])
if idx >= first and idx <= last then
	return {'T', string.sub(redis.call('LINDEX', KEYS[2], idx - first), 9, 16)}
end
local si = tonumber(redis.call('HGET', KEYS[1], 'snapidx') or '0')
if si > 0 and idx == si then
	return {'S', redis.call('HGET', KEYS[1], 'snapterm')}
end
if idx == 0 and first == 1 then
	return {'S', '0'}
end
if idx < first then
	return {'C', str(first)}
end
return {'U', str(last)}
`)

// compactScript: KEYS meta, log; ARGV owner, upTo.
var compactScript = goredis.NewScript(luaFence + luaBounds + `
local si = tonumber(redis.call('HGET', KEYS[1], 'snapidx') or '0')
local upTo = tonumber(ARGV[2])
if upTo > si then
	return redis.error_reply('UNAVAILABLE ' .. str(si))
end
if upTo < first then
	return 'OK'
end
local drop = upTo + 1 - first
if drop >= len then
	redis.call('DEL', KEYS[2])
else
	redis.call('LTRIM', KEYS[2], drop, -1)
end
redis.call('HSET', KEYS[1], 'first', str(upTo + 1))
return 'OK'
`)

// createScript registers a snapshot being written: KEYS meta, pending;
// ARGV owner. It returns the snapshot's ID.
var createScript = goredis.NewScript(luaFence + `
local id = redis.call('HINCRBY', KEYS[1], 'nextsnap', 1)
redis.call('SADD', KEYS[2], id)
return id
`)

// chunkScript appends chunk number seq while the snapshot is still pending
// (a newer open of the node drops pending snapshots): KEYS pending, chunks;
// ARGV id, seq, data. Run again after a lost reply (go-redis retries), it
// finds the chunk there and adds nothing.
var chunkScript = goredis.NewScript(`
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
	return redis.error_reply('FENCED snapshot removed by a newer open')
end
local n = redis.call('LLEN', KEYS[2])
local seq = tonumber(ARGV[2])
if n == seq + 1 then
	return n
end
if n ~= seq then
	return redis.error_reply('CHUNKS snapshot has ' .. n .. ' chunks, writing chunk ' .. seq)
end
return redis.call('RPUSH', KEYS[2], ARGV[3])
`)

// commitScript makes a pending snapshot the latest: KEYS meta, log,
// pending, old chunk list; ARGV owner, id, index, term (8 bytes), term
// (decimal), membership, chunks, old snapshot id (0: none), old snapshot
// TTL in ms. It answers RACE and the latest ID when the old ID is not the
// latest (an earlier Commit's reply was lost). The log is kept if it holds the entry at index with that term
// (Raft paper §7), else discarded. The old snapshot's chunks expire after
// the TTL, so that readers still on it can finish.
var commitScript = goredis.NewScript(luaFence + luaBounds + `
local cur = redis.call('HGET', KEYS[1], 'snap') or '0'
if cur == ARGV[2] then
	return 'DONE' -- run again after a lost reply: already committed
end
if cur ~= ARGV[8] then
	return redis.error_reply('RACE ' .. cur)
end
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 0 then
	return redis.error_reply('FENCED snapshot removed by a newer open')
end
local idx = tonumber(ARGV[3])
local si = tonumber(redis.call('HGET', KEYS[1], 'snapidx') or '0')
if idx < si then
	return redis.error_reply('STALE ' .. str(si))
end
local keep = false
if idx >= first and idx <= last then
	keep = string.sub(redis.call('LINDEX', KEYS[2], idx - first), 9, 16) == ARGV[4]
end
if not keep then
	redis.call('DEL', KEYS[2])
	redis.call('HSET', KEYS[1], 'first', str(idx + 1))
end
redis.call('HSET', KEYS[1], 'snap', ARGV[2], 'snapidx', ARGV[3], 'snapterm', ARGV[5], 'snapmem', ARGV[6], 'snapchunks', ARGV[7])
redis.call('SREM', KEYS[3], ARGV[2])
if ARGV[8] ~= '0' then
	redis.call('PEXPIRE', KEYS[4], ARGV[9])
end
if keep then
	return 'KEPT'
end
return 'DISCARDED'
`)

// abortScript drops a pending snapshot: KEYS pending, chunks; ARGV id. A
// snapshot no longer pending (committed by a Commit whose reply was lost)
// is left alone.
var abortScript = goredis.NewScript(`
if redis.call('SREM', KEYS[1], ARGV[1]) == 1 then
	redis.call('DEL', KEYS[2])
end
return 'OK'
`)

// snapMetaScript returns the latest snapshot's id, index, term, membership
// and chunk count: KEYS meta.
var snapMetaScript = goredis.NewScript(`
return redis.call('HMGET', KEYS[1], 'snap', 'snapidx', 'snapterm', 'snapmem', 'snapchunks')
`)
