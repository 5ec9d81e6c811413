"""libvirt → Snapshot: connections, readers, hang isolation, and the poller that merges them."""
