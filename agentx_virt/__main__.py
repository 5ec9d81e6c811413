"""``python -m agentx_virt`` runs the command line."""

import sys

from agentx_virt.app.cli import main

sys.exit(main())
