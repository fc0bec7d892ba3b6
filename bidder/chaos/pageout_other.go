//go:build !linux

package chaos

import (
	"context"
	"fmt"
)

// RunPageOut needs Linux (pidfd_open and process_madvise).
func RunPageOut(ctx context.Context, cfg PageOutConfig) (PageOutStats, error) {
	return PageOutStats{}, fmt.Errorf("pageout: %w", ErrNotSupported)
}
