"""Hand-written schemas for the custom resources whose upstream CRDs cannot be fetched from a reachable registry.

Only `operator.tigera.io/v1` `Installation` (Calico): the Tigera operator's CRDs live in github.com/tigera/operator
(pkg/crds), which the Go module proxy refuses here, and no other registry carries them. This schema is NOT the
upstream one: it lists only the fields `platform/services/calico.py` sets, with their types and the enumerations of
the Calico v3.30 API reference, and rejects everything else, so a typo in our object fails like it would against the
real CRD, while a field the real CRD accepts but this schema lacks fails too (add it here, from the API reference).
Replace it with the upstream CRD when a registry serves it.
"""

from __future__ import annotations

from typing import Any

ENABLED = {"type": "string", "enum": ["Enabled", "Disabled"]}

IP_POOL: dict[str, Any] = {
    "type": "object",
    "required": ["cidr"],
    "properties": {
        "name": {"type": "string"},
        "cidr": {"type": "string"},
        "encapsulation": {
            "type": "string",
            "enum": ["IPIPCrossSubnet", "IPIP", "VXLAN", "VXLANCrossSubnet", "None"],
        },
        "natOutgoing": ENABLED,
        "nodeSelector": {"type": "string"},
        "blockSize": {"type": "integer", "minimum": 0, "maximum": 128},
        "disableBGPExport": {"type": "boolean"},
        "allowedUses": {"type": "array", "items": {"type": "string", "enum": ["Workload", "Tunnel"]}},
    },
}

INSTALLATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "variant": {"type": "string", "enum": ["Calico", "TigeraSecureEnterprise"]},
                "registry": {"type": "string", "pattern": "/$"},
                "imagePath": {"type": "string"},
                "imagePrefix": {"type": "string"},
                "controlPlaneReplicas": {"type": "integer", "minimum": 0},
                "cni": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Calico", "GKE", "AmazonVPC", "AzureVNET"]},
                        "ipam": {"type": "object", "properties": {"type": {"type": "string"}}},
                    },
                },
                "calicoNetwork": {
                    "type": "object",
                    "properties": {
                        "bgp": ENABLED,
                        "ipPools": {"type": "array", "items": IP_POOL},
                        "mtu": {"type": "integer"},
                        "linuxDataplane": {"type": "string", "enum": ["Iptables", "BPF", "VPP", "Nftables"]},
                    },
                },
            },
        },
    },
}

#: (apiVersion, kind) → (namespaced, schema).
HAND_SCHEMAS: dict[tuple[str, str], tuple[bool, dict[str, Any]]] = {
    ("operator.tigera.io/v1", "Installation"): (False, INSTALLATION),
}
