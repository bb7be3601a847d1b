package daemon

import (
	"container/list"
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
	m        map[eventKey]*list.Element // of *cachedEvent
	order    *list.List                 // oldest first, for eviction when full
	size     int
	bytes    int64
	maxBytes int64
}

// eventKey identifies an event: dedup is per source, so two sources may
// hold events with the same id.
type eventKey struct{ source, id string }

type cachedEvent struct {
	ev   *engine.Event
	jobs int // jobs of the event not finished yet
}

// maxCachedEvent is the largest body cached; larger events are read back.
const maxCachedEvent = 64 << 10

func newEventCache(size int, maxBytes int64) *eventCache {
	return &eventCache{m: make(map[eventKey]*list.Element), order: list.New(), size: size, maxBytes: maxBytes}
}

// cost approximates an event's memory: the raw body plus its decoded form.
func cost(ev *engine.Event) int64 { return 3 * int64(len(ev.Raw)) }

// put caches ev, which has jobs unfinished jobs, and reports whether it was
// added. Only a full cache evicts, the oldest entry first.
func (c *eventCache) put(ev *engine.Event, jobs int) bool {
	if len(ev.Raw) > maxCachedEvent || jobs <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := eventKey{ev.Source, ev.ID}
	if _, ok := c.m[k]; ok {
		return false
	}
	for (len(c.m) >= c.size || c.bytes+cost(ev) > c.maxBytes) && c.order.Len() > 0 {
		c.remove(c.order.Front())
	}
	c.m[k] = c.order.PushBack(&cachedEvent{ev: ev, jobs: jobs})
	c.bytes += cost(ev)
	return true
}

// done records that one job of the event has finished for good (succeeded
// or dead); the event leaves the cache with its last job. (Jobs made later
// by a replay or revived by hand are not counted; when they finish, the
// event may leave early and is read back from the journal if needed.)
func (c *eventCache) done(source, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[eventKey{source, id}]; ok {
		e := el.Value.(*cachedEvent)
		if e.jobs--; e.jobs <= 0 {
			c.remove(el)
		}
	}
}

func (c *eventCache) remove(el *list.Element) {
	e := c.order.Remove(el).(*cachedEvent)
	delete(c.m, eventKey{e.ev.Source, e.ev.ID})
	c.bytes -= cost(e.ev)
}

func (c *eventCache) get(source, id string) *engine.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[eventKey{source, id}]; ok {
		return el.Value.(*cachedEvent).ev
	}
	return nil
}

// len returns the number of cached events.
func (c *eventCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
