package volume

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash test: a child process writes blocks and flushes after each
// write, printing "ack BLOCK GEN" once the flush returned; the parent
// kills it with SIGKILL mid-stream, reopens the volume and checks that
// every acknowledged block holds its acknowledged generation (or a later
// one, written but not yet acknowledged), untorn.

const crashBlocks, crashBS = 512, 4096

func TestMain(m *testing.M) {
	if dir := os.Getenv("SNAPSTACK_VOLUME_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

func crashChild(dir string) {
	v, err := Open(dir, noBase)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	first, _ := strconv.Atoi(os.Getenv("SNAPSTACK_VOLUME_CRASH_GEN"))
	for gen := uint32(first); ; gen++ {
		for b := 0; b < crashBlocks; b += 3 {
			if _, err := v.WriteAt(genBlock(gen, crashBS), int64(b*crashBS)); err != nil {
				panic(err)
			}
			if err := v.Flush(); err != nil {
				panic(err)
			}
			fmt.Fprintf(out, "ack %d %d\n", b, gen)
			out.Flush()
			if gen == uint32(first)+1 && b == 30 {
				v.Seal(fmt.Sprintf("s-crash-%d", first)) // a seal in the middle of the stream
			}
		}
	}
}

func TestCrashKeepsFlushedWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vol")
	v, err := Create(dir, crashBlocks*crashBS, noBase)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		// Each round starts at a higher generation, so that data of an
		// earlier round cannot pass for an acknowledged write.
		cmd.Env = append(os.Environ(), "SNAPSTACK_VOLUME_CRASH_CHILD="+dir, fmt.Sprintf("SNAPSTACK_VOLUME_CRASH_GEN=%d", 1+round*1000))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := map[int]uint32{}
		sc := bufio.NewScanner(stdout)
		deadline := time.Now().Add(20 * time.Second)
		for n := 0; n < 400+round*150 && sc.Scan(); n++ {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				t.Fatalf("child said %q", sc.Text())
			}
			b, _ := strconv.Atoi(f[1])
			g, _ := strconv.Atoi(f[2])
			acked[b] = uint32(g)
			if time.Now().After(deadline) {
				break
			}
		}
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
		if len(acked) == 0 {
			t.Fatal("child acknowledged nothing")
		}
		v, err := Open(dir, noBase)
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		for b, g := range acked {
			p := make([]byte, crashBS)
			if _, err := v.ReadAt(p, int64(b*crashBS)); err != nil {
				t.Fatal(err)
			}
			got := binary.LittleEndian.Uint32(p)
			if got < g || string(p) != string(genBlock(got, crashBS)) {
				t.Fatalf("round %d: block %d holds gen %d (torn or older), acknowledged %d", round, b, got, g)
			}
		}
		v.Close()
	}
}
