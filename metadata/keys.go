package metadata

// Key layout (KEYS.md is the reference; keep the two in step) and the JSON
// records stored under the keys.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxTopicNameLen is Kafka's limit (249, so that "<topic>-<partition>" file
// names stay below 255 bytes); kept so any Kafka client's topic fits.
const maxTopicNameLen = 249

// validName reports whether s is a legal Kafka topic name. Cluster names
// follow the same rule: both become one etcd key segment, so they must
// never contain '/'.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxTopicNameLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// keys builds the etcd keys of one cluster.
type keys struct {
	prefix string // "/<cluster>/"
}

func newKeys(cluster string) keys { return keys{prefix: "/" + cluster + "/"} }

func (k keys) nodes() string            { return k.prefix + "nodes/" }
func (k keys) node(id int32) string     { return k.nodes() + strconv.FormatInt(int64(id), 10) }
func (k keys) topics() string           { return k.prefix + "topics/" }
func (k keys) topic(name string) string { return k.topics() + name }

// cacheRange is the key range the cache loads and watches: nodes/ up to the
// end of topics/, partitions/ sorting between them. Consumer group offsets
// (groups/) sort before it and stay out: they change often, and the group
// coordinator caches them itself, so no Store should pay for watching them.
func (k keys) cacheRange() (start, end string) {
	return k.nodes(), k.prefix + "topics" + string(rune('/'+1))
}

// topicParts is the prefix of every partition key of one topic: DeleteTopic
// removes it with one range delete.
func (k keys) topicParts(id TopicID) string {
	return k.prefix + "partitions/" + id.String() + "/"
}

func (k keys) part(id TopicID, p int32) string {
	return k.topicParts(id) + strconv.FormatInt(int64(p), 10) + "/"
}

func (k keys) leader(id TopicID, p int32) string   { return k.part(id, p) + "leader" }
func (k keys) epoch(id TopicID, p int32) string    { return k.part(id, p) + "epoch" }
func (k keys) state(id TopicID, p int32) string    { return k.part(id, p) + "state" }
func (k keys) logStart(id TopicID, p int32) string { return k.part(id, p) + "logstart" }
func (k keys) durable(id TopicID, p int32) string  { return k.part(id, p) + "durable" }

// index is the key of the entry starting at base. Zero-padding to 20 digits
// (the width of MaxInt64) makes etcd's byte order the offset order.
func (k keys) index(id TopicID, p int32, base int64) string {
	return fmt.Sprintf("%sindex/%020d", k.part(id, p), base)
}

// keyKind says what a key under the cluster prefix is.
type keyKind int

const (
	kindUnknown keyKind = iota
	kindNode
	kindTopic
	kindLeader
	kindEpoch
	kindState
	kindLogStart
	kindDurable
	kindIndex
	kindACL
	kindQuota
)

// parsedKey is a key under the cluster prefix, taken apart.
type parsedKey struct {
	kind  keyKind
	node  int32   // kindNode
	name  string  // kindTopic
	topic TopicID // partition kinds
	part  int32   // partition kinds
	base  int64   // kindIndex
	id    string  // kindACL
}

// parseKey takes apart a key under the prefix. Keys it does not know (from
// a newer Strata, or garbage) give kindUnknown: the cache skips them.
func (k keys) parseKey(key string) parsedKey {
	rest, ok := strings.CutPrefix(key, k.prefix)
	if !ok {
		return parsedKey{}
	}
	f := strings.Split(rest, "/")
	switch {
	case len(f) == 3 && f[0] == "security" && f[1] == "acls" && f[2] != "":
		return parsedKey{kind: kindACL, id: f[2]}
	case len(f) == 3 && f[0] == "security" && f[1] == "quotas" && f[2] != "":
		return parsedKey{kind: kindQuota, id: f[2]}
	case len(f) == 2 && f[0] == "nodes":
		id, err := strconv.ParseInt(f[1], 10, 32)
		if err != nil {
			return parsedKey{}
		}
		return parsedKey{kind: kindNode, node: int32(id)}
	case len(f) == 2 && f[0] == "topics":
		if !validName(f[1]) {
			return parsedKey{}
		}
		return parsedKey{kind: kindTopic, name: f[1]}
	case (len(f) == 4 || len(f) == 5) && f[0] == "partitions":
		id, err := ParseTopicID(f[1])
		if err != nil {
			return parsedKey{}
		}
		p, err := strconv.ParseInt(f[2], 10, 32)
		if err != nil || p < 0 {
			return parsedKey{}
		}
		pk := parsedKey{topic: id, part: int32(p)}
		if len(f) == 5 {
			if f[3] != "index" {
				return parsedKey{}
			}
			base, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil || base < 0 {
				return parsedKey{}
			}
			pk.kind, pk.base = kindIndex, base
			return pk
		}
		switch f[3] {
		case "leader":
			pk.kind = kindLeader
		case "epoch":
			pk.kind = kindEpoch
		case "state":
			pk.kind = kindState
		case "logstart":
			pk.kind = kindLogStart
		case "durable":
			pk.kind = kindDurable
		default:
			return parsedKey{}
		}
		return pk
	}
	return parsedKey{}
}

// The JSON records. Unknown fields are ignored on decode so newer writers
// can add some.

type nodeRec struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	HTTP string `json:"http,omitempty"`
	// Listeners: "NAME://host:port,..." (omitted with one listener).
	Listeners string `json:"listeners,omitempty"`
}

type topicRec struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Created    time.Time         `json:"created"`
}

type leaderRec struct {
	Node  int32 `json:"node"`
	Epoch int32 `json:"epoch"`
}

type epochRec struct {
	Epoch int32 `json:"epoch"`
}

type stateRec struct {
	Durable     int64           `json:"durable"`
	LeaderEpoch int32           `json:"leader_epoch"`
	Producers   json.RawMessage `json:"producers,omitempty"`
	// Stable is the last stable offset, written only while it is below
	// Durable (a transaction is open).
	Stable *int64 `json:"stable,omitempty"`
}

type logStartRec struct {
	LogStart int64 `json:"log_start"`
}

// encodeDurable is the durable key's value: 20 zero-padded decimal digits,
// so that etcd can compare it for equality with a commit's base offset.
func encodeDurable(offset int64) string { return fmt.Sprintf("%020d", offset) }

func decodeDurable(b []byte) (int64, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || v < 0 || len(b) != 20 {
		return 0, fmt.Errorf("%w: durable offset %q", errBadValue, b)
	}
	return v, nil
}

// errBadValue marks a value in etcd that does not decode; the cache logs and
// skips it rather than trusting it.
var errBadValue = errors.New("metadata: malformed value in etcd")

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are marshalled here; they cannot fail.
		panic(fmt.Sprintf("metadata: marshal %T: %v", v, err))
	}
	return string(b)
}

func encodeTopic(t Topic) string {
	return mustJSON(topicRec{Name: t.Name, ID: t.ID.String(), Partitions: t.Partitions,
		Configs: t.Configs, Created: t.Created})
}

func decodeTopic(b []byte) (Topic, error) {
	var r topicRec
	if err := json.Unmarshal(b, &r); err != nil {
		return Topic{}, fmt.Errorf("%w: topic: %v", errBadValue, err)
	}
	id, err := ParseTopicID(r.ID)
	if err != nil || !validName(r.Name) || r.Partitions <= 0 {
		return Topic{}, fmt.Errorf("%w: topic %q", errBadValue, r.Name)
	}
	if len(r.Configs) == 0 {
		r.Configs = nil
	}
	return Topic{Name: r.Name, ID: id, Partitions: r.Partitions, Configs: r.Configs, Created: r.Created}, nil
}

func decodeNode(b []byte) (Node, error) {
	var r nodeRec
	if err := json.Unmarshal(b, &r); err != nil {
		return Node{}, fmt.Errorf("%w: node: %v", errBadValue, err)
	}
	return Node{ID: r.ID, Host: r.Host, Port: r.Port, HTTP: r.HTTP, Listeners: r.Listeners}, nil
}

func decodeLeader(b []byte) (leaderRec, error) {
	var r leaderRec
	if err := json.Unmarshal(b, &r); err != nil {
		return leaderRec{}, fmt.Errorf("%w: leader: %v", errBadValue, err)
	}
	return r, nil
}

func decodeEpoch(b []byte) (int32, error) {
	var r epochRec
	if err := json.Unmarshal(b, &r); err != nil || r.Epoch < 0 {
		return 0, fmt.Errorf("%w: epoch %q", errBadValue, b)
	}
	return r.Epoch, nil
}

func decodeState(b []byte) (stateRec, error) {
	var r stateRec
	if err := json.Unmarshal(b, &r); err != nil || r.Durable < 0 {
		return stateRec{}, fmt.Errorf("%w: state %q", errBadValue, b)
	}
	return r, nil
}

func decodeLogStart(b []byte) (int64, error) {
	var r logStartRec
	if err := json.Unmarshal(b, &r); err != nil || r.LogStart < 0 {
		return 0, fmt.Errorf("%w: log start %q", errBadValue, b)
	}
	return r.LogStart, nil
}

func decodeIndexEntry(b []byte) (IndexEntry, error) {
	var e IndexEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return IndexEntry{}, fmt.Errorf("%w: index entry: %v", errBadValue, err)
	}
	if e.BaseOffset < 0 || e.LastOffset < e.BaseOffset {
		return IndexEntry{}, fmt.Errorf("%w: index entry [%d, %d]", errBadValue, e.BaseOffset, e.LastOffset)
	}
	return e, nil
}
