"""LIBVIRT-EXT-MIB: its compiled form, and the pure Snapshot → OID table builder."""
