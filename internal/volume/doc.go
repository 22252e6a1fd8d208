// Package volume is a block device made of a chain of copy-on-write
// layers, the data plane of one snapstack disk.
//
// Glossary
//
//   - cluster: the unit of copy-on-write, ClusterSize (64 KiB) bytes at an
//     aligned offset. A layer either holds a cluster or lets reads fall
//     through to the layer below.
//   - layer: a sparse file as large as the disk plus the list of clusters
//     it holds (its map). The top layer is the writable head; the others
//     are sealed and never change until they are merged down.
//   - base: an optional read-only bottom (a snapshot in the chunk store,
//     read lazily through the Base interface) under every layer.
//   - seal: Seal fixes a point in time. It waits for writes in flight,
//     flushes the head, turns it into a sealed layer named after the
//     snapshot and starts a new, empty head. It costs the same whatever the
//     disk size. The sealed layer holds exactly the clusters written since
//     the previous seal: changed-block tracking for free.
//
// Reading cluster c returns the data of the topmost layer that holds c,
// else the base, else zeroes. Extents tells which ranges read as zeroes
// without reading them (for NBD block status): from the cluster maps,
// the holes punched in the layers' files and, when the base implements
// BaseExtenter, the base's zero chunks.
//
// Durability: writes go to the head's data file; the head's map is an
// append-only log of the clusters it gained, appended and fsynced by
// Flush after the data file is fsynced. So every write acknowledged
// before a Flush returned survives a crash (kill -9 or power loss), and
// a write not yet flushed may be lost but never corrupts flushed data of
// other clusters. A Flush records only the clusters gained before its
// data fsync started (a write landing during it waits for the next
// Flush), and cuts a partly appended record off the log before it
// reports the failure.
//
// Failures: after a failed fsync Linux may drop the unwritten pages and
// report later fsyncs as successful, so the layer refuses every later
// Flush and Seal (ErrFailed). A change of volume.json whose directory
// fsync failed (atomicfile.ErrNotDurable) may or may not survive a
// crash: the volume keeps the files of both chains and refuses all I/O.
// In both cases the volume serves again once opened anew (a restart),
// from what is durable.
//
// On disk (one directory per volume):
//
//	volume.json      chain: size, layers bottom-up, base snapshot (atomic rename)
//	<layer>.data     sparse data file of a layer (cluster c at offset c*ClusterSize)
//	<layer>.map      log of 16-byte records: cluster index (u64 LE), CRC-32C of
//	                 the index (u32 LE), 4 zero bytes; replay stops at the
//	                 first torn or corrupt record
package volume
