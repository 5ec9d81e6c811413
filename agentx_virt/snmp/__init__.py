"""What the AgentX protocol and the MIB layer share: SNMP types and the served table."""
