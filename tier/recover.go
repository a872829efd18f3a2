package tier

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-io/strata/metadata"
	"github.com/strata-io/strata/segment"
)

// epochFile names the file in a partition's hot-tier folder that records the
// leader epoch its segments were written under.
const epochFile = "epoch"

// recoverLocal reuses a partition's local segments after a restart, so the
// recent history is read from local disk rather than the object store. It
// trusts them only when they are provably the durable log: the last commit
// in etcd was made under the epoch that wrote them (so nobody else has
// written durable data since), every file recovers cleanly (a torn tail is
// cut off by segment.Recover), and the blocks below the durable offset form
// one contiguous run ending exactly at it. Blocks at or past the durable
// offset were never acknowledged as durable and are dropped. Anything else
// returns nil, and the caller starts empty: the object store has it all.
func recoverLocal(dir string, st metadata.PartitionState) []*localSeg {
	data, err := os.ReadFile(filepath.Join(dir, epochFile))
	if err != nil {
		return nil
	}
	epoch, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 32)
	if err != nil || int32(epoch) != st.LeaderEpoch || st.DurableOffset <= st.LogStartOffset {
		return nil
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(names) == 0 {
		return nil
	}
	slices.Sort(names) // zero-padded base offsets: lexical is numeric order
	var segs []*localSeg
	fail := func() []*localSeg {
		for _, s := range segs {
			s.w.Close()
			if s.rf != nil {
				s.rf.Close()
			}
		}
		return nil
	}
	next := int64(-1) // the offset the next kept block must start at
	for _, path := range names {
		w, _, err := segment.Recover(path)
		if err != nil {
			return fail()
		}
		refs := w.Blocks()
		keep := 0
		for keep < len(refs) && refs[keep].LastOffset < st.DurableOffset {
			keep++
		}
		if keep == 0 {
			// Nothing durable in this file (it started at or after the
			// durable offset): drop it, and everything after it.
			w.Close()
			if os.Remove(path) != nil {
				return fail()
			}
			continue
		}
		if next >= 0 && refs[0].BaseOffset != next {
			w.Close()
			return fail()
		}
		if keep < len(refs) {
			if w.Sealed() || w.Truncate(keep) != nil {
				w.Close()
				return fail()
			}
			refs = w.Blocks()
		}
		next = refs[len(refs)-1].LastOffset + 1
		rf, err := os.Open(path)
		if err != nil {
			w.Close()
			return fail()
		}
		segs = append(segs, &localSeg{path: path, w: w, rf: rf, refs: slices.Clone(refs), size: w.Size()})
	}
	if next != st.DurableOffset {
		return fail()
	}
	return segs
}

// writeEpochFile records the epoch the partition's new local data is
// written under, durably, before any of it is.
func writeEpochFile(dir string, epoch int32) error {
	tmp := filepath.Join(dir, epochFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.WriteString(strconv.FormatInt(int64(epoch), 10) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, epochFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
