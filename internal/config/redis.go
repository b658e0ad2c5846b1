package config

import (
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisOptions parses a Redis URL (REDIS_URL) into go-redis client options
// with maintenance notifications off (see QuietRedis).
func RedisOptions(url string) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	return QuietRedis(o), nil
}

// QuietRedis turns off go-redis's maintenance notifications in o and returns
// it. In their default "auto" mode go-redis sets them up as each client is
// built and logs "failed to initialize maintnotifications" when it cannot —
// as when a client is built from another client's Options(), which the cache
// does at every start of every ispgraph process. The notifications
// announce a managed service's planned failovers (Redis Cloud, Redis
// Enterprise); ispgraph's clients reconnect on their own and its jobs and
// cache survive a lost connection, so every client is built with them off.
//
// It also speaks RESP2 unless o asks for a protocol (REDIS_URL's
// "?protocol=3"): ispgraph uses nothing of RESP3 (push notifications,
// client-side caching), and on RESP3 go-redis looks for pending push
// notifications on every command it sends, 2 % of the server's CPU on the
// benchmark's subscriber detail (docs/benchmarks.md).
//
// And it gives each connection buffers of RedisBufferSize unless o (or
// REDIS_URL's "?pipeline_read_buffer_size=" and the like) sets them. go-redis
// gives every connection 32 KiB each way and every connection of its
// pipeline pool 128 KiB each way; ispgraph's commands and pipelines are a
// few hundred bytes (revocation stamps, a rate-limit hit, generation
// counters), and a larger cached value is read straight into a buffer of its
// own size whatever the connection's buffer. Under the benchmark the
// defaults held 3-4 MB of the server's live heap, which under the soft
// memory limit is RSS (cmd/ispgraph/memory.go).
func QuietRedis(o *redis.Options) *redis.Options {
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if o.Protocol == 0 {
		o.Protocol = 2
	}
	for _, size := range []*int{&o.ReadBufferSize, &o.WriteBufferSize, &o.PipelineReadBufferSize, &o.PipelineWriteBufferSize} {
		if *size == 0 {
			*size = RedisBufferSize
		}
	}
	return o
}

// RedisBufferSize is the read and write buffer of each Redis connection
// QuietRedis sets up, in bytes.
const RedisBufferSize = 4 << 10
