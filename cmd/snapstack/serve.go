package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/snapstack/snapstack/internal/api"
	"github.com/snapstack/snapstack/internal/app"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sc, err := parseServeFlags(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	sc.dsw.TransitionDelay = sc.ecs.TransitionDelay
	a, err := app.Start(ctx, app.Config{
		Listen: sc.listen, NBDListen: sc.nbdListen, DataDir: sc.data, Admin: sc.admin, ECS: sc.ecs, API: api.DefaultOptions(),
		RetentionInterval: sc.retentionEvery, Log: log, Announce: stdout, DSW: sc.dsw,
		AccessKeyID: os.Getenv("SNAPSTACK_ACCESS_KEY_ID"), AccessKeySecret: os.Getenv("SNAPSTACK_ACCESS_KEY_SECRET"),
	})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-a.Err():
		a.Close()
		return err
	}
	return a.Close()
}
