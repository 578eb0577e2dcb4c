//go:build !linux

package bolt

import "go.etcd.io/bbolt"

// releaseMapped does nothing off Linux: the mapped pages stay resident
// until the kernel reclaims them.
func releaseMapped(*bbolt.DB) error { return nil }
