package daemon

import (
	"sync"

	"github.com/payramd/payramd/engine"
)

// eventCache keeps the most recently ingested events in memory, so that a
// retry moments after its event was journaled does not read and decode it
// again. The journal stays the source of truth: a miss (after a restart, an
// old or large event) reads it from there. Cached events are never modified,
// so jobs may share them. It is bounded both in count and in bytes: with
// max_body at 1 MiB, a count alone could hold gigabytes.
type eventCache struct {
	mu       sync.Mutex
	m        map[string]*engine.Event
	ring     []string
	next     int
	bytes    int64
	maxBytes int64
}

// maxCachedEvent is the largest body cached; larger events are read back.
const maxCachedEvent = 64 << 10

func newEventCache(size int, maxBytes int64) *eventCache {
	return &eventCache{m: make(map[string]*engine.Event, size), ring: make([]string, size), maxBytes: maxBytes}
}

// cost approximates an event's memory: the raw body plus its decoded form.
func cost(ev *engine.Event) int64 { return 3 * int64(len(ev.Raw)) }

// put caches ev and reports whether it was added.
func (c *eventCache) put(ev *engine.Event) bool {
	if len(ev.Raw) > maxCachedEvent {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ev.ID]; ok {
		return false
	}
	for c.bytes+cost(ev) > c.maxBytes && c.evictOne() {
	}
	c.evictSlot(c.next)
	c.ring[c.next] = ev.ID
	c.m[ev.ID] = ev
	c.bytes += cost(ev)
	c.next = (c.next + 1) % len(c.ring)
	return true
}

// evictSlot forgets the event in ring slot i, if any.
func (c *eventCache) evictSlot(i int) {
	if id := c.ring[i]; id != "" {
		if ev, ok := c.m[id]; ok {
			c.bytes -= cost(ev)
			delete(c.m, id)
		}
		c.ring[i] = ""
	}
}

// evictOne forgets the oldest cached event; false when the cache is empty.
func (c *eventCache) evictOne() bool {
	for k := 0; k < len(c.ring); k++ {
		i := (c.next + k) % len(c.ring)
		if c.ring[i] != "" {
			c.evictSlot(i)
			return true
		}
	}
	return false
}

func (c *eventCache) get(id string) *engine.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}
