package daemon

import (
	"sync"

	"github.com/payramd/payramd/engine"
)

// eventCache keeps in memory the events whose jobs have not finished yet,
// so that a retry moments after its event was journaled does not read and
// decode it again. The journal stays the source of truth: a miss (after a
// restart, an old or large event) reads it from there. Cached events are
// never modified, so jobs may share them.
//
// An event leaves the cache when the last of its jobs succeeds or dies,
// which under normal traffic is moments after it arrived: the cache then
// holds only events with retries ahead, instead of the last few thousand
// events, which kept tens of megabytes alive for the garbage collector to
// scan for nothing. It is also bounded, in count and in bytes (with
// max_body at 1 MiB, a count alone could hold gigabytes): when full, the
// oldest entry goes.
type eventCache struct {
	mu       sync.Mutex
	m        map[string]*cachedEvent
	ring     []string // ids in insertion order, for evicting the oldest
	next     int
	bytes    int64
	maxBytes int64
}

type cachedEvent struct {
	ev   *engine.Event
	jobs int // jobs of the event not finished yet
	slot int // its index in ring
}

// maxCachedEvent is the largest body cached; larger events are read back.
const maxCachedEvent = 64 << 10

func newEventCache(size int, maxBytes int64) *eventCache {
	return &eventCache{m: make(map[string]*cachedEvent), ring: make([]string, size), maxBytes: maxBytes}
}

// cost approximates an event's memory: the raw body plus its decoded form.
func cost(ev *engine.Event) int64 { return 3 * int64(len(ev.Raw)) }

// put caches ev, which has jobs unfinished jobs, and reports whether it was
// added.
func (c *eventCache) put(ev *engine.Event, jobs int) bool {
	if len(ev.Raw) > maxCachedEvent || jobs <= 0 {
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
	c.m[ev.ID] = &cachedEvent{ev: ev, jobs: jobs, slot: c.next}
	c.bytes += cost(ev)
	c.next = (c.next + 1) % len(c.ring)
	return true
}

// done records that one job of event id has finished for good (succeeded
// or dead); the event leaves the cache with its last job.
func (c *eventCache) done(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		if e.jobs--; e.jobs <= 0 {
			c.evictSlot(e.slot)
		}
	}
}

// evictSlot forgets the event in ring slot i, if any.
func (c *eventCache) evictSlot(i int) {
	id := c.ring[i]
	if id == "" {
		return
	}
	if e, ok := c.m[id]; ok && e.slot == i {
		c.bytes -= cost(e.ev)
		delete(c.m, id)
	}
	c.ring[i] = ""
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
	if e, ok := c.m[id]; ok {
		return e.ev
	}
	return nil
}

// len returns the number of cached events.
func (c *eventCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
