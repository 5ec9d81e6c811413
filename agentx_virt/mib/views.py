"""The MIB modules the agent can serve, by the name ``[mibs] serve`` and ``--mibs`` use.

Each is a spec (``spec.py``) built from the same Snapshot with the same domain
indexes, and registered as its own subtree on the one AgentX session.
"""

from __future__ import annotations

from agentx_virt.mib.libvirt_ext import LIBVIRT_EXT_MIB
from agentx_virt.mib.libvirt_mib import LIBVIRT_MIB, LIBVIRT_MIB_LEGACY
from agentx_virt.mib.spec import MibSpec
from agentx_virt.mib.vm_mib import VM_MIB
from agentx_virt.mib.vmware_vminfo import VMWARE_VMINFO_MIB

VIEWS: dict[str, MibSpec] = {
    "LIBVIRT-EXT-MIB": LIBVIRT_EXT_MIB,
    "LIBVIRT-MIB": LIBVIRT_MIB,
    "VM-MIB": VM_MIB,                              # RFC 7666, mib-2 236
    "LIBVIRT-MIB-LEGACY": LIBVIRT_MIB_LEGACY,      # opt-in: enterprise 12345
    "VMWARE-VMINFO-MIB": VMWARE_VMINFO_MIB,        # opt-in: VMware's enterprise 6876
}
DEFAULT_MIBS = ("LIBVIRT-EXT-MIB", "LIBVIRT-MIB", "VM-MIB")
# The notification families ([mibs] notify), by the MIB whose notifications they are;
# an NMS usually wants one family, so only LIBVIRT-EXT-MIB's are sent unless [mibs]
# notify says otherwise. VM-MIB-BULK is VM-MIB's bulk notifications (vmAffectedVMs).
FAMILY_MIB = {"LIBVIRT-EXT-MIB": "LIBVIRT-EXT-MIB", "LIBVIRT-MIB": "LIBVIRT-MIB",
              "VM-MIB": "VM-MIB", "VM-MIB-BULK": "VM-MIB",
              "VMWARE-VMINFO-MIB": "VMWARE-VMINFO-MIB"}
NOTIFYING_MIBS = tuple(FAMILY_MIB)
DEFAULT_NOTIFY = ("LIBVIRT-EXT-MIB",)
