package daemon

import (
	"sync"

	"github.com/payramd/payramd/engine"
)

// eventCache keeps the most recently ingested events in memory, so a job
// that runs moments after its event was journaled does not read and decode
// the event again. The journal stays the source of truth: a miss (after a
// restart, or for an old event) reads it from there. Cached events are
// never modified, so jobs may share them.
type eventCache struct {
	mu   sync.Mutex
	m    map[string]*engine.Event
	ring []string
	next int
}

func newEventCache(size int) *eventCache {
	return &eventCache{m: make(map[string]*engine.Event, size), ring: make([]string, size)}
}

// put caches ev and reports whether it was added (false: already cached).
func (c *eventCache) put(ev *engine.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ev.ID]; ok {
		return false
	}
	if old := c.ring[c.next]; old != "" {
		delete(c.m, old)
	}
	c.ring[c.next] = ev.ID
	c.m[ev.ID] = ev
	c.next = (c.next + 1) % len(c.ring)
	return true
}

func (c *eventCache) get(id string) *engine.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}
