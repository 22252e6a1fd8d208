package mem_test

import (
	"testing"

	"github.com/snapstack/snapstack/internal/blob"
	"github.com/snapstack/snapstack/internal/blob/blobtest"
	"github.com/snapstack/snapstack/internal/blob/mem"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(*testing.T) blob.Backend { return mem.New() })
}
