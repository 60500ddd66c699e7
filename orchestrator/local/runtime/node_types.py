"""This machine as the local workspace's one node type (``clusters/list-node-types``).

Every cluster runs on this host, so there is one node type, ``local``, with the host's cores,
memory and the disk that holds the state folder as its one local disk (databricks-sdk's
``select_node_type(local_disk=True)`` looks for one). Numbers are read when asked, not
remembered: they are the machine's.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import psutil

__all__ = ["LOCAL_NODE_TYPE", "node_type"]

LOCAL_NODE_TYPE = "local"


def node_type(state_dir: Path) -> dict[str, Any]:
    """The node type in ``compute.NodeType``'s shape."""
    cores = os.cpu_count() or 1
    memory_mb = psutil.virtual_memory().total // (1024 * 1024)
    disk_gb = shutil.disk_usage(state_dir).total // (1024**3)
    return {
        "node_type_id": LOCAL_NODE_TYPE,
        "instance_type_id": LOCAL_NODE_TYPE,
        "description": f"This machine ({cores} cores, {memory_mb // 1024} GB)",
        "category": "General Purpose",
        "num_cores": float(cores),
        "memory_mb": int(memory_mb),
        "num_gpus": 0,
        "is_deprecated": False,
        "is_hidden": False,
        "photon_driver_capable": False,
        "photon_worker_capable": False,
        "support_port_forwarding": False,
        "is_io_cache_enabled": False,
        "node_instance_type": {
            "instance_type_id": LOCAL_NODE_TYPE,
            "local_disks": 1,
            "local_disk_size_gb": int(disk_gb),
        },
    }
