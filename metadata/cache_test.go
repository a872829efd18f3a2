package metadata

import (
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"
)

func testCache() *cache { return newCache(newKeys("c"), slog.New(slog.DiscardHandler)) }

func TestCacheRevisionOrdering(t *testing.T) {
	c := testCache()
	id := TopicID{1}
	topic := Topic{Name: "t", ID: id, Partitions: 1, Created: time.Unix(1, 0).UTC()}
	tkey := c.keys.topic("t")
	ikey := c.keys.index(id, 0, 0)
	put := func(key string, v any, rev int64) event {
		b, _ := json.Marshal(v)
		if s, ok := v.(string); ok {
			b = []byte(s)
		}
		return event{key: key, value: b, modRev: rev, createRev: rev}
	}
	e1, e2 := testEntry(0, 9), testEntry(0, 19)

	c.replace(5, []event{put(tkey, encodeTopic(topic), 3)})
	// An own write at 10 shows at once; the watch delivering an older write
	// of the same key afterwards does not undo it.
	c.applyOwn(put(ikey, e2, 10))
	c.applyWatched([]event{put(ikey, e1, 8)}, 8)
	if got := c.indexEntries(TP{"t", 0}, 0); !slices.Equal(got, []IndexEntry{e2}) {
		t.Fatalf("after older watched put: %v", got)
	}
	// A reload from a snapshot older than the own write keeps it.
	c.replace(9, []event{put(tkey, encodeTopic(topic), 3), put(ikey, e1, 8)})
	if got := c.indexEntries(TP{"t", 0}, 0); !slices.Equal(got, []IndexEntry{e2}) {
		t.Fatalf("after reload at 9: %v", got)
	}
	// The watch re-delivering the own write is a no-op; a later delete wins.
	c.applyWatched([]event{put(ikey, e2, 10)}, 10)
	if len(c.pending) != 0 {
		t.Fatalf("pending not trimmed: %v", c.pending)
	}
	c.applyWatched([]event{{del: true, key: ikey, modRev: 11}}, 11)
	if got := c.indexEntries(TP{"t", 0}, 0); got != nil {
		t.Fatalf("after delete: %v", got)
	}
	// An own write the watch already passed is skipped.
	c.applyOwn(put(ikey, e1, 10))
	if got := c.indexEntries(TP{"t", 0}, 0); got != nil {
		t.Fatalf("stale own write applied: %v", got)
	}
}

func TestCacheIndexOrder(t *testing.T) {
	c := testCache()
	id := TopicID{2}
	b, _ := json.Marshal(topicRec{Name: "t", ID: id.String(), Partitions: 1})
	c.replace(1, []event{{key: c.keys.topic("t"), value: b, modRev: 1, createRev: 1}})
	rev := int64(2)
	for _, base := range []int64{30, 0, 20, 10, 40} {
		v, _ := json.Marshal(testEntry(base, base+9))
		c.applyWatched([]event{{key: c.keys.index(id, 0, base), value: v, modRev: rev}}, rev)
		rev++
	}
	var bases []int64
	for _, e := range c.indexEntries(TP{"t", 0}, 15) {
		bases = append(bases, e.BaseOffset)
	}
	if !slices.Equal(bases, []int64{10, 20, 30, 40}) {
		t.Fatalf("bases from 15 = %v", bases)
	}
	c.applyWatched([]event{{del: true, key: c.keys.index(id, 0, 20), modRev: rev}}, rev)
	if got := c.indexEntries(TP{"t", 0}, 0); len(got) != 4 || got[2].BaseOffset != 30 {
		t.Fatalf("after delete of 20: %v", got)
	}
}

func TestParseKey(t *testing.T) {
	k := newKeys("c")
	id := TopicID{0xab, 0xcd}
	tests := []struct {
		key  string
		want parsedKey
	}{
		{k.node(12), parsedKey{kind: kindNode, node: 12}},
		{k.topic("a.b"), parsedKey{kind: kindTopic, name: "a.b"}},
		{k.leader(id, 3), parsedKey{kind: kindLeader, topic: id, part: 3}},
		{k.epoch(id, 3), parsedKey{kind: kindEpoch, topic: id, part: 3}},
		{k.state(id, 3), parsedKey{kind: kindState, topic: id, part: 3}},
		{k.logStart(id, 3), parsedKey{kind: kindLogStart, topic: id, part: 3}},
		{k.index(id, 3, 42), parsedKey{kind: kindIndex, topic: id, part: 3, base: 42}},
		{"/other/nodes/1", parsedKey{}},
		{"/c/nodes/x", parsedKey{}},
		{"/c/topics/a/b", parsedKey{}},
		{"/c/partitions/zz/0/leader", parsedKey{}},
		{"/c/partitions/" + id.String() + "/-1/leader", parsedKey{}},
		{"/c/partitions/" + id.String() + "/0/other", parsedKey{}},
		{"/c/partitions/" + id.String() + "/0/index/-5", parsedKey{}},
		{"/c/future/thing", parsedKey{}},
	}
	for _, tt := range tests {
		if got := k.parseKey(tt.key); got != tt.want {
			t.Errorf("parseKey(%q) = %+v, want %+v", tt.key, got, tt.want)
		}
	}
	start, end := k.cacheRange()
	for _, key := range []string{k.node(0), k.topic("zzz"), k.topic("~"), k.leader(id, 0), k.index(id, 9, 1<<62), k.durable(id, 1)} {
		if key < start || key >= end {
			t.Errorf("cached key %q outside the watched range [%q, %q)", key, start, end)
		}
	}
	for _, key := range []string{k.groups() + "g/offsets/t/0", "/c0/nodes/1", "/c/topics0", "/b/topics/t"} {
		if key >= start && key < end {
			t.Errorf("key %q inside the watched range [%q, %q)", key, start, end)
		}
	}
	if got := k.index(id, 0, 7); got[len(got)-20:] != "00000000000000000007" {
		t.Errorf("index key %q not zero-padded", got)
	}
}

// FuzzCacheApply feeds arbitrary keys and values (what a corrupted or newer
// etcd could hold) through the cache: it must never panic and must keep its
// invariants.
func FuzzCacheApply(f *testing.F) {
	k := newKeys("c")
	id := TopicID{7}
	f.Add(k.topic("t"), []byte(`{"name":"t","id":"`+id.String()+`","partitions":1}`), false)
	f.Add(k.index(id, 0, 5), []byte(`{"base":5,"last":9,"object":"o","size":1}`), false)
	f.Add(k.index(id, 0, 5), []byte(`{"base":5,"last":4}`), false)
	f.Add(k.leader(id, 0), []byte(`{"node":1,"epoch":2}`), true)
	f.Add(k.node(1), []byte(`{"id":1,"host":"h","port":1}`), false)
	f.Add(k.node(1), []byte(`{"id":2}`), false)
	f.Add("/c/topics/t", []byte(`null`), false)
	f.Add("/c/partitions/"+id.String()+"/0/index/9999999999999999999999", []byte(`{}`), false)
	f.Fuzz(func(t *testing.T, key string, value []byte, del bool) {
		c := testCache()
		tb, _ := json.Marshal(topicRec{Name: "t", ID: id.String(), Partitions: 1})
		c.replace(1, []event{{key: k.topic("t"), value: tb, modRev: 1, createRev: 1}})
		c.applyWatched([]event{{key: key, value: value, modRev: 2, createRev: 2, del: del}}, 2)
		c.applyOwn(event{key: key, value: value, modRev: 3, createRev: 3})
		es := c.indexEntries(TP{"t", 0}, 0)
		for i := 1; i < len(es); i++ {
			if es[i-1].BaseOffset >= es[i].BaseOffset {
				t.Fatalf("index out of order: %v", es)
			}
		}
		for _, e := range es {
			if e.BaseOffset < 0 || e.LastOffset < e.BaseOffset {
				t.Fatalf("bad entry accepted: %+v", e)
			}
		}
		c.topics = map[string]cachedTopic{}
		_ = c.allTopics()
		_ = c.allNodes()
		_, _ = c.leader(TP{"t", 0})
	})
}
