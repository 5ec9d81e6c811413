"""Expositions of the Snapshot: the sink protocol, its fan-out, the SNMP sink and dump."""
