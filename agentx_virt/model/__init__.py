"""The model: what libvirt reported, as frozen data keyed by UUID (no SNMP, no I/O)."""
