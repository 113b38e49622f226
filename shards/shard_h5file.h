/* The HDF5 file driver the shard writer writes through: the POSIX (sec2) driver, but an I/O error is kept
 * (its errno) instead of being returned to HDF5.
 *
 * Why: HDF5 1.10 frees a file whose H5Fclose failed to flush and yet keeps its id, so library
 * termination at exit touches freed memory (status 139 after "cannot close: file write failed").
 * Through this driver no HDF5 call ever sees a failed write: from the first failed write, read,
 * truncate or close on, every write is dropped and the errno is stored where the caller asked, so
 * H5Fclose always completes and the caller reports the OS error (ENOSPC, EIO, ...) and removes the
 * file, whose content is then worthless. Files written without an error are byte-identical to
 * the sec2 driver's (same feature flags, same free-list map, no driver superblock block). */
#ifndef SP_SHARD_H5FILE_H
#define SP_SHARD_H5FILE_H

#include <hdf5.h>

/* A file access property list for the driver (close with H5Pclose): the first errno of any
 * I/O on files opened with it is stored in *first_errno (which the caller sets to 0 and keeps
 * alive until the file is closed). H5I_INVALID_HID when HDF5 refuses. */
hid_t sp_h5file_fapl(int *first_errno);

#endif
