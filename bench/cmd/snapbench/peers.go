package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A peer is a backup tool run as BASELINE.md describes: run k of the
// full backup goes into empty repo k, the incremental backs day1 up into
// repo k, the restore reads repo k, and vm2 is backed up into it last.
type peer struct {
	name  string                                  // "restic", "borg-lz4", ...
	env   func(dir string) []string               // environment of every command
	init  func(repo string) []string              // repo creation (not timed)
	save  func(repo, name, image string) []string // back image up as archive name
	load  func(repo, name string) []string        // restore archive name into the working directory
	out   func(target, image string) string       // where the restore puts image
	check string                                  // binary that must be installed
}

func restic() peer {
	return peer{
		name: "restic", check: "restic",
		env: func(dir string) []string {
			return []string{"RESTIC_PASSWORD=bench", "RESTIC_CACHE_DIR=" + filepath.Join(dir, "cache")}
		},
		init: func(repo string) []string {
			return []string{"restic", "-q", "-r", repo, "init", "--repository-version", "2"}
		},
		save: func(repo, _, image string) []string {
			return []string{"restic", "-q", "-r", repo, "backup", "--compression", "auto", image}
		},
		load: func(repo, _ string) []string {
			return []string{"restic", "-q", "-r", repo, "restore", "latest", "--target", "."}
		},
		out: func(target, image string) string { return filepath.Join(target, image) },
	}
}

func borg(compression string) peer {
	return peer{
		name: "borg-" + strings.ReplaceAll(compression, ",", ""), check: "borg",
		env: func(dir string) []string {
			return []string{"BORG_PASSPHRASE=bench", "BORG_BASE_DIR=" + dir, "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes",
				"BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"}
		},
		init: func(repo string) []string { return []string{"borg", "init", "-e", "repokey", repo} },
		save: func(repo, name, image string) []string {
			return []string{"borg", "create", "--compression", compression, repo + "::" + name, image}
		},
		load: func(repo, name string) []string { return []string{"borg", "extract", "--sparse", repo + "::" + name} },
		out:  func(target, image string) string { return filepath.Join(target, strings.TrimPrefix(image, "/")) },
	}
}

// peerByName returns the peer a -tools entry names.
func peerByName(name string) (peer, bool) {
	switch name {
	case "restic":
		return restic(), true
	case "borg-lz4":
		return borg("lz4"), true
	case "borg-zstd3":
		return borg("zstd,3"), true
	}
	return peer{}, false
}

// runPeer is run k of a peer.
func runPeer(cfg *config, res *results, p peer, k int) error {
	dir := filepath.Join(cfg.work, fmt.Sprintf("%s-%d", p.name, k))
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	repo, target := filepath.Join(dir, "repo"), filepath.Join(dir, "restore")
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	command := func(wd string, args []string) *exec.Cmd {
		c := exec.Command(args[0], args[1:]...)
		c.Dir = wd
		c.Env = append(os.Environ(), p.env(dir)...)
		return c
	}
	if out, err := command(dir, p.init(repo)).CombinedOutput(); err != nil {
		return fmt.Errorf("%s init: %v\n%s", p.name, err, out)
	}
	m := meter{res: res, tool: p.name}
	roots := []string{cfg.work, cfg.images}
	// Images are named by absolute path: restic keeps it, borg strips the
	// leading slash.
	base, day1, vm2 := cfg.img("base.img"), cfg.img("day1.img"), cfg.img("vm2.img")

	prepareStep(roots, base)
	if err := m.childStep("full", command(cfg.images, p.save(repo, "full", base)), nil); err != nil {
		return err
	}
	stored := dirBytes(repo)
	res.add(p.name+"/full/stored", float64(stored))

	prepareStep(roots, day1)
	if err := m.childStep("incr", command(cfg.images, p.save(repo, "day1", day1)), nil); err != nil {
		return err
	}
	res.add(p.name+"/incr/stored", float64(dirBytes(repo)-stored))
	stored = dirBytes(repo)

	out := p.out(target, day1)
	prepareStep(roots, repo)
	if err := m.childStep("restore", command(target, p.load(repo, "day1")), func() error { return fsyncFile(out) }); err != nil {
		return err
	}
	if err := verify(out, day1); err != nil {
		return fmt.Errorf("%s restore: %w", p.name, err)
	}
	os.RemoveAll(target)

	prepareStep(roots, vm2)
	if err := m.childStep("vm2", command(cfg.images, p.save(repo, "vm2", vm2)), nil); err != nil {
		return err
	}
	res.add(p.name+"/vm2/stored", float64(dirBytes(repo)-stored))
	return nil
}
