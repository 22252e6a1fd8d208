// Command snapstack is the snapstack service and its admin client.
//
//	snapstack serve [flags]   run the service
//	snapstack admin [flags] set TYPE ID STATE true|false
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		err = runServe(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "admin":
		err = runAdmin(ctx, os.Args[2:], os.Stdout)
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapstack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  snapstack serve [--listen 127.0.0.1:9090] [--nbd-listen 127.0.0.1:10809] [--nbd-max-conns N] [--nbd-buffer-mib N] [--nbd-reply-timeout D] [--data ./snapstack-data] [--admin] [--config FILE] [--region ID=ZONE,ZONE...]
  snapstack admin [--endpoint http://127.0.0.1:9090] [--data DIR] set account|instance|disk ID STATE true|false
  snapstack admin [...] verify SNAPSHOT_ID     re-read every chunk of a snapshot
  snapstack admin [...] collect                remove chunks no snapshot or disk needs
  snapstack admin states
`)
}
