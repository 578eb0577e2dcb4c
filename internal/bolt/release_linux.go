package bolt

import (
	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapped drops this process's mappings of the data file's pages
// (madvise MADV_DONTNEED). bbolt reads through a map of the whole file, so
// every page a listing or a write touched would otherwise stay resident in
// the process, and its memory would grow with the number of readers. The
// kernel's page cache keeps the pages: the next read maps them again
// without going to the disk. It runs inside a read transaction, which
// holds bbolt's mmap lock, so the map cannot move meanwhile; bbolt's map
// is shared and read-only (writes go through the file), so no data is
// dropped.
func releaseMapped(db *bbolt.DB) error {
	return db.View(func(tx *bbolt.Tx) error {
		size := tx.Size()
		if size <= 0 {
			return nil
		}
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, db.Info().Data, uintptr(size), unix.MADV_DONTNEED)
		if errno != 0 {
			return errno
		}
		return nil
	})
}
