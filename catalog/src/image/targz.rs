//! The deterministic layer: tar entries sorted by path, uid/gid 0, modes 0755 (directories)
//! and 0644 (files), mtime 0, no user or group names; gzip without a time or a name.
