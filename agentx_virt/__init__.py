"""agentx-virt: an AgentX subagent that serves libvirt domain statistics through snmpd."""

__version__ = "0.1.0"
