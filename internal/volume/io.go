package volume

// clusterSpan is the part of one cluster an I/O touches.
type clusterSpan struct {
	c        int64 // cluster index
	start    int64 // disk offset of the cluster
	length   int64 // cluster length (the last cluster may be short)
	from, to int64 // byte range within the cluster
}

// spans splits [off, off+n) at cluster boundaries.
func (v *Volume) spans(off, n int64, fn func(s clusterSpan) error) error {
	for n > 0 {
		c := off / ClusterSize
		start := c * ClusterSize
		length := min(int64(ClusterSize), v.st.Size-start)
		from := off - start
		to := min(length, from+n)
		if err := fn(clusterSpan{c: c, start: start, length: length, from: from, to: to}); err != nil {
			return err
		}
		n -= to - from
		off += to - from
	}
	return nil
}

func (s clusterSpan) full() bool { return s.from == 0 && s.to == s.length }

// ReadAt reads len(p) bytes at off.
func (v *Volume) ReadAt(p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	if err := v.readChain(p, off, len(v.layers)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// readChain reads through layers[:top] and the base. Consecutive
// clusters served by the same source are read with one call.
func (v *Volume) readChain(p []byte, off int64, top int) error {
	const fromBase, zeroes = -1, -2
	source := func(c int64) int {
		for i := top - 1; i >= 0; i-- {
			if v.layers[i].has(c) {
				return i
			}
		}
		if v.base != nil {
			return fromBase
		}
		return zeroes
	}
	runStart, runSrc, runOff := 0, 0, off
	flush := func(end int) error {
		seg := p[runStart:end]
		if len(seg) == 0 {
			return nil
		}
		switch runSrc {
		case zeroes:
			clear(seg)
			return nil
		case fromBase:
			v.hint(runOff, int64(len(seg)))
			return v.base.ReadAt(seg, runOff)
		}
		_, err := v.layers[runSrc].data.ReadAt(seg, runOff)
		return err
	}
	pos := 0
	err := v.spans(off, int64(len(p)), func(s clusterSpan) error {
		src := source(s.c)
		if pos > runStart && src != runSrc {
			if err := flush(pos); err != nil {
				return err
			}
			runStart, runOff = pos, s.start+s.from
		}
		runSrc = src
		pos += int(s.to - s.from)
		return nil
	})
	if err != nil {
		return err
	}
	return flush(pos)
}

// hint tells a running Hydrate that [off, off+n) is being read from the
// base. The caller holds v.mu.
func (v *Volume) hint(off, n int64) {
	if v.hints == nil {
		return
	}
	for k := off / v.hintChunk; k*v.hintChunk < off+n; k++ {
		select {
		case v.hints <- k:
		default:
			return
		}
	}
}

func (v *Volume) readCluster(seg []byte, off, c int64, top int) error {
	for i := top - 1; i >= 0; i-- {
		if v.layers[i].has(c) {
			_, err := v.layers[i].data.ReadAt(seg, off)
			return err
		}
	}
	if v.base != nil {
		return v.base.ReadAt(seg, off)
	}
	clear(seg)
	return nil
}

// WriteAt writes p at off into the head. Runs of clusters that need no
// copy-up (the head holds them, or the write covers them) go out in one
// write under their stripe locks; the others are copied up one by one.
func (v *Volume) WriteAt(p []byte, off int64) (int, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, int64(len(p))); err != nil {
		return 0, err
	}
	head := v.layers[len(v.layers)-1]
	var run []clusterSpan
	runPos, pos := 0, 0
	flushRun := func() error {
		if len(run) == 0 {
			return nil
		}
		n := 0
		for _, s := range run {
			n += int(s.to - s.from)
		}
		unlock := v.lockStripes(run)
		_, err := head.data.WriteAt(p[runPos:runPos+n], run[0].start+run[0].from)
		if err == nil {
			for _, s := range run {
				head.gain(s.c)
			}
		}
		unlock()
		run = run[:0]
		return err
	}
	err := v.spans(off, int64(len(p)), func(s clusterSpan) error {
		seg := p[pos : pos+int(s.to-s.from)]
		defer func() { pos += len(seg) }()
		// A cluster the head holds stays held, so this test is stable.
		if head.has(s.c) || s.full() {
			if len(run) == 0 {
				runPos = pos
			}
			run = append(run, s)
			return nil
		}
		if err := flushRun(); err != nil {
			return err
		}
		return v.writeCluster(s, seg)
	})
	if err == nil {
		err = flushRun()
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// lockStripes locks the stripes of the spans' clusters in index order
// (no deadlock between runs) and returns the unlock.
func (v *Volume) lockStripes(spans []clusterSpan) func() {
	var held [len(v.stripes)]bool
	for _, s := range spans {
		held[s.c%int64(len(v.stripes))] = true
	}
	for i := range held {
		if held[i] {
			v.stripes[i].Lock()
		}
	}
	return func() {
		for i := range held {
			if held[i] {
				v.stripes[i].Unlock()
			}
		}
	}
}

// writeCluster writes seg (nil: zeroes) into one cluster of the head,
// copying the cluster up from below first when the head does not hold it
// and the write does not cover it.
func (v *Volume) writeCluster(s clusterSpan, seg []byte) error {
	head := v.layers[len(v.layers)-1]
	mu := &v.stripes[s.c%int64(len(v.stripes))]
	mu.Lock()
	defer mu.Unlock()
	if seg == nil {
		seg = make([]byte, s.to-s.from)
	}
	if head.has(s.c) || s.full() {
		if _, err := head.data.WriteAt(seg, s.start+s.from); err != nil {
			return err
		}
		head.gain(s.c)
		return nil
	}
	buf := make([]byte, s.length)
	if err := v.readCluster(buf, s.start, s.c, len(v.layers)-1); err != nil {
		return err
	}
	copy(buf[s.from:], seg)
	if _, err := head.data.WriteAt(buf, s.start); err != nil {
		return err
	}
	head.gain(s.c)
	return nil
}

// Flush makes every write acknowledged so far durable.
func (v *Volume) Flush() error {
	v.flushMu.Lock()
	defer v.flushMu.Unlock()
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.usable(); err != nil {
		return err
	}
	return v.layers[len(v.layers)-1].flush()
}

// Trim discards [off, off+n): reads return zeroes afterwards.
func (v *Volume) Trim(off, n int64) error { return v.WriteZeroes(off, n, false) }

// WriteZeroes writes zeroes over [off, off+n). Whole clusters are
// deallocated in the head (a hole reads as zeroes) unless noHole.
func (v *Volume) WriteZeroes(off, n int64, noHole bool) error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if err := v.check(off, n); err != nil {
		return err
	}
	head := v.layers[len(v.layers)-1]
	return v.spans(off, n, func(s clusterSpan) error {
		if !s.full() || noHole {
			return v.writeCluster(s, nil)
		}
		mu := &v.stripes[s.c%int64(len(v.stripes))]
		mu.Lock()
		defer mu.Unlock()
		if err := head.punch(s.start, s.length); err != nil {
			return err
		}
		head.gain(s.c)
		return nil
	})
}
